# FCN with FcaNet-50 on Cityscapes: MMSegmentation's
# fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py with its ResNetV1c
# backbone swapped for FcaNet-50 with the deep stem ("V1c"; see
# ../_base_/models/fcanet50.py).
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/models/fcanet50.py'
]

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(pretrained=None, backbone=dict(_base_.fcanet50, deep_stem=True))
