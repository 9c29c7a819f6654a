# Mask R-CNN, FcaNet-50, FPN, 1x on COCO: MMDetection's R-50 config with
# only the backbone changed (and mmfca imported to register it).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='FcaNet',
        depth=50,
        reduction=16,
        freq_sel_method='top16',
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # the release's COCO settings: frozen stem and stage 1, frozen BN
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # an ImageNet FcaNet-50 converted with
        # tools/model_converters/fcanet2mmfca.py fca50.pth <this path>
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/fcanet50_in1k.pth',
            prefix='backbone.')))
