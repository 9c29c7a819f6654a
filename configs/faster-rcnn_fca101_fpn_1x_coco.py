# Faster R-CNN FcaNet-101 FPN 1x (cf. MMDetection's
# faster-rcnn_r101_fpn_1x_coco).
_base_ = './faster-rcnn_fca50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(checkpoint='checkpoints/fcanet101_in1k.pth')))
