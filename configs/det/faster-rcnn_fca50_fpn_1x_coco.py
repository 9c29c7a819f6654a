# Faster R-CNN, FcaNet-50, FPN, 1x on COCO: the FcaNet release's recipe
# (its MMDetection 2.x config, 39.0 box AP), on MMDetection 3.x's
# faster-rcnn_r50_fpn_1x_coco.py. Differences from that config, each from
# the release (see docs/recipes.md):
# - backbone FcaNet-50 (top16, reduction 16, filters 56/28/14/7) from the
#   converted ImageNet fca50.pth; frozen_stages=1, BN requires_grad=True,
#   norm_eval=True (the same values as MMDetection's R-50, kept explicit);
# - SGD lr 0.01 for 8 GPUs x 2 images (MMDetection uses 0.02);
# - fixed padding, train and test: 1333x800 (WxH) for landscape images,
#   800x1333 for portrait (the release's patched Pad, mmfca's
#   OrientationPad), and no further padding to a multiple of 32, so the FCA
#   layers' adaptive pooling sees the release's feature sizes;
# - R-CNN sampler RandomSampler 512 / 0.25, match_low_quality=False (the
#   same as MMDetection's, kept explicit).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/fcanet50.py'
]

custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(pad_size_divisor=1),
    backbone=dict(
        _base_.fcanet50,
        reduction=16,
        freq_sel_method='top16',
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(match_low_quality=False),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='OrientationPad', landscape_size=(1333, 800)),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='OrientationPad', landscape_size=(1333, 800)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.01))
# the release's total batch: 8 GPUs x 2 images
auto_scale_lr = dict(base_batch_size=16)
