# Mask R-CNN FcaNet-101 FPN 1x (cf. MMDetection's mask-rcnn_r101_fpn_1x_coco).
_base_ = './mask_rcnn_fca50_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(checkpoint='checkpoints/fcanet101_in1k.pth')))
