# Mask R-CNN FcaNet-101 FPN 1x (cf. MMDetection's mask-rcnn_r101_fpn_1x_coco).
# The release has no Mask R-CNN FcaNet-101 config; this one follows its
# Mask R-CNN FcaNet-50 recipe (./mask-rcnn_fca50_fpn_1x_coco.py) with depth
# 101.
_base_ = [
    './mask-rcnn_fca50_fpn_1x_coco.py', '../_base_/models/fcanet101.py'
]

model = dict(backbone=dict(_base_.fcanet101))
