# The entry config the README's commands use: Mask R-CNN FcaNet-50 FPN 1x
# on COCO with the release's recipe. It is configs/det/
# mask-rcnn_fca50_fpn_1x_coco.py (the file the model index lists) under its
# short name; runs from it keep their work_dirs/mask_rcnn_fca50_coco/.
_base_ = './det/mask-rcnn_fca50_fpn_1x_coco.py'
