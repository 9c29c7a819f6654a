# FcaNet-50 on ImageNet with the release's recipe (the ResNet-50 baseline
# config with the backbone swapped). Published top-1: 78.52.
_base_ = './resnet50_8xb32-release-recipe_in1k.py'

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='FcaNet',
        depth=50,
        reduction=16,
        freq_sel_method='top16',
        out_indices=(3, ),
        style='pytorch',
        # classification trains every BN (MMDetection's default is eval)
        norm_eval=False))
