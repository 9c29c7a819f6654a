# Mask R-CNN FcaNet-50 FPN 1x with mixed precision, as the release trained
# (MMDetection's mask-rcnn_r50_fpn_amp-1x_coco.py on our backbone).
_base_ = './mask_rcnn_fca50_coco.py'

optim_wrapper = dict(type='AmpOptimWrapper')
