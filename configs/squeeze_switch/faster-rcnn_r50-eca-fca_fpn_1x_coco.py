# ECA-Net's attention (1D convolution across channels) as an MMDetection
# ResNet plugin after conv3 of every bottleneck, squeezing with the top16
# DCT frequencies instead of GAP: the `squeeze=dict()` line is the switch
# (delete it for plain ECA). Filters follow each stage's map size; 'mean'
# normalisation. Everything else is MMDetection's Faster R-CNN R-50.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='ECALayer', squeeze=dict()),
            position='after_conv3')
    ]))
