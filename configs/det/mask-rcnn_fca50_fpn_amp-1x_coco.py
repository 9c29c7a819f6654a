# Mask R-CNN FcaNet-50 FPN 1x, the release's recipe
# (./mask-rcnn_fca50_fpn_1x_coco.py) with mixed precision (as MMDetection's
# mask-rcnn_r50_fpn_amp-1x_coco.py does for R-50).
_base_ = './mask-rcnn_fca50_fpn_1x_coco.py'

optim_wrapper = dict(type='AmpOptimWrapper')
