# FCA in MMDetection's own ResNeXt-101 32x4d through its plugin route: one
# MultiSpectralAttention after conv3 (after norm3, before the identity add:
# FcaNet's place) of every bottleneck, with FcaNet's per-stage filters
# 56/28/14/7 (detection maps are pooled to them, as in the release).
# Everything else is MMDetection's faster-rcnn_x101-32x4d_fpn_1x_coco.py;
# the FCA layers start from their default initialisation.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)


def _fca(size, stage):
    return dict(
        cfg=dict(type='MultiSpectralAttention', dct_h=size, dct_w=size),
        stages=tuple(i == stage for i in range(4)),
        position='after_conv3')


model = dict(
    backbone=dict(plugins=[_fca(56, 0), _fca(28, 1), _fca(14, 2), _fca(7, 3)]))
