# FcaNet-50 with the release's converted ImageNet weights, for detection
# and segmentation configs whose base has a ResNet-50 backbone. Inherit
# this file beside that base and take the dict into the backbone, adding
# what the config changes (a copy: `dict(...)` leaves the shared one as it
# is):
#     _base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
#               './_base_/models/fcanet50.py']
#     model = dict(backbone=dict(_base_.fcanet50))
# Whatever the dict does not set (strides, norm_cfg, frozen_stages, ...)
# stays the base's ResNet setting. The checkpoint comes from
#     python tools/model_converters/fcanet2mmfca.py fca50.pth \
#         checkpoints/fcanet50_in1k.pth
# (the release's fca50.pth; see docs/recipes.md).
#
# Segmentation (configs/seg/): MMSegmentation's ResNetV1c bases keep their
# strides, dilations, contract_dilation, SyncBN and norm_eval=False through
# the merge; the configs add deep_stem=True, which is what "V1c" means. The
# FCA layers sit inside the residual blocks, after the stem, so the deep
# stem does not move them; a dilated stage's larger maps are pooled to its
# 56/28/14/7 filter. The released FcaNet-50 has the 7x7 stem: every stage
# loads from it, the deep stem (stem.*) starts from scratch (reported as
# missing keys).
#
# mmengine cannot merge a `model` key from two bases, so the dict is a
# variable of its own: it is also a top-level key of every config that
# inherits this file.
fcanet50 = dict(
    type='FcaNet',
    depth=50,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='checkpoints/fcanet50_in1k.pth',
        prefix='backbone.'))
