# Faster R-CNN FcaNet-101 FPN 1x: the release's recipe (41.2 box AP), the
# same as its FcaNet-50 one (./faster-rcnn_fca50_fpn_1x_coco.py) with depth
# 101 and the converted ImageNet fca101.pth.
_base_ = [
    './faster-rcnn_fca50_fpn_1x_coco.py', '../_base_/models/fcanet101.py'
]

model = dict(backbone=dict(_base_.fcanet101))
