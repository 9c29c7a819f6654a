# UPerNet with FcaNet-50 on ADE20K: MMSegmentation's upernet_r50_4xb4-80k_ade20k-512x512.py with
# the ResNetV1c backbone swapped for FcaNet-50. The base's strides,
# dilations, contract_dilation, SyncBN and norm_eval=False are kept by the
# merge; deep_stem=True is what "V1c" means. The FCA layers sit inside the
# residual blocks, after the stem, so the deep stem does not move them; a
# dilated stage's larger maps are pooled to its 56/28/14/7 filter.
# The released ImageNet FcaNet-50 has the 7x7 stem: every stage loads from
# it, the deep stem (stem.*) starts from scratch (reported as missing keys).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(
        type='FcaNet',
        deep_stem=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/fcanet50_in1k.pth',
            prefix='backbone.')))
