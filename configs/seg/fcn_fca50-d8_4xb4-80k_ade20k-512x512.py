# FCN with FcaNet-50 on ADE20K: MMSegmentation's
# fcn_r50-d8_4xb4-80k_ade20k-512x512.py with its ResNetV1c
# backbone swapped for FcaNet-50 with the deep stem ("V1c"; see
# ../_base_/models/fcanet50.py).
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
    '../_base_/models/fcanet50.py'
]

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(pretrained=None, backbone=dict(_base_.fcanet50, deep_stem=True))
