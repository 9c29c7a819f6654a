# The channel branch of CBAM as an MMDetection ResNet plugin after conv3 of
# every bottleneck, its average pooling switched to the top16 DCT squeeze
# (`squeeze=dict()`; delete it for plain CBAM; the max pooling stays).
# Filters follow each stage's map size; 'mean' normalisation. Everything
# else is MMDetection's Faster R-CNN R-50.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='CBAMChannelAttention', squeeze=dict()),
            position='after_conv3')
    ]))
