# Mask R-CNN, FcaNet-50, FPN, 1x on COCO: the FcaNet release's recipe (its
# MMDetection 2.x config, 40.3 box / 36.2 mask AP), on MMDetection 3.x's
# mask-rcnn_r50_fpn_1x_coco.py. Differences from that config, each from the
# release (see docs/recipes.md):
# - backbone FcaNet-50 (top16, reduction 16, filters 56/28/14/7) from the
#   converted ImageNet fca50.pth; frozen_stages=0 (the release's
#   `frozen_stages=False`: the stem only, no stage), BN requires_grad=False,
#   norm_eval=True;
# - SGD lr 0.01 for 8 GPUs x 1 image (MMDetection: 0.02 for 8 x 2);
# - R-CNN sampler OHEMSampler 512 / 0.25 (MMDetection: RandomSampler), with
#   match_low_quality=True (the same as MMDetection's, kept explicit);
# - padding to a multiple of 32, as MMDetection's.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/fcanet50.py'
]

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _base_.fcanet50,
        _delete_=True,
        reduction=16,
        freq_sel_method='top16',
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=0,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch'),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(match_low_quality=True),
            sampler=dict(type='OHEMSampler', num=512, pos_fraction=0.25,
                         neg_pos_ub=-1, add_gt_as_proposals=True))))

train_dataloader = dict(batch_size=1)
optim_wrapper = dict(optimizer=dict(lr=0.01))
# the release's total batch: 8 GPUs x 1 image
auto_scale_lr = dict(base_batch_size=8)
