# Mask R-CNN FcaNet-50 FPN 1x, the release's recipe
# (./mask_rcnn_fca50_coco.py) with mixed precision (as MMDetection's
# mask-rcnn_r50_fpn_amp-1x_coco.py does for R-50).
_base_ = './mask_rcnn_fca50_coco.py'

optim_wrapper = dict(type='AmpOptimWrapper')
