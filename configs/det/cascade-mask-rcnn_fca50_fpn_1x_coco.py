# Cascade Mask R-CNN, FcaNet-50, FPN, 1x: MMDetection's
# cascade-mask-rcnn_r50_fpn_1x_coco.py with the backbone swapped for FcaNet-50
# (its ResNet settings are kept by the merge: depth 50, frozen stem + stage 1,
# BN trained with norm_eval). The release has no config for this detector, so
# nothing else changes.
_base_ = [
    'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/fcanet50.py'
]

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(backbone=dict(_base_.fcanet50))
