# The demo (`make demo`): Mask R-CNN FcaNet on the synthetic COCO-style
# shapes set, trained from scratch on a 2-core CPU in a few minutes. It
# inherits the documented COCO config; every difference is listed here.
_base_ = '../det/mask-rcnn_fca50_fpn_1x_coco.py'

# written by tools/demo.py (DEMO_DATA there: shapes less than 30 % visible
# are crowd annotations, which COCO evaluation ignores)
data_root = 'data/synthetic_coco_demo/'
metainfo = dict(
    classes=('rectangle', 'ellipse', 'triangle'),
    palette=[(220, 20, 60), (0, 160, 80), (0, 60, 230)])
# 128 px instead of 1333x800 (the generator draws 160 px images): a CPU
img_scale = (128, 128)

# Both RoI extractors (box and mask; each keeps its base output size):
# 128 channels on P3-P5; RoIAlign with 2x2 samples per bin instead of
# adaptive (up to 3x3 at these RoI sizes), computed as a matrix product
# (mmfca's MatmulRoIExtractor: mmcv's RoIAlign, same results; mmcv's CPU
# backward runs on one thread and took a fifth of an iteration: 0.68 ->
# 0.57 s per iteration).
roi_extractor = dict(
    type='MatmulRoIExtractor',
    out_channels=128,
    featmap_strides=[8, 16, 32],
    roi_layer=dict(sampling_ratio=2))

model = dict(
    # Depth 18 instead of 50: 4x fewer backbone FLOPs on a CPU.
    # BN trained (requires_grad, no norm_eval) and nothing frozen: there is
    # no ImageNet checkpoint to start from (no download), so the whole
    # backbone learns from scratch (init_cfg=None).
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    # BasicBlock widths in; 128 channels out instead of 256 through the
    # neck and heads, and slimmer RoI heads: profiled on 2 cores, RoIAlign
    # and the 256-channel mask convs took most of an iteration (4.2 s ->
    # 1.4 s per batch of 8). Three shape classes need far less capacity.
    # FPN levels P3-P6 (strides 8-64) instead of P2-P6: the shapes are
    # 25-65 px at 128 px, and the stride-4 level's 3x3 FPN and RPN convs
    # cost as much as the whole backbone (0.88 -> 0.72 s per iteration).
    neck=dict(
        in_channels=[64, 128, 256, 512],
        out_channels=128,
        start_level=1,
        num_outs=4),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # 32-256 px anchors: smaller than COCO's for these shapes
        anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64])),
    # The extractors above; two mask convs instead of four.
    roi_head=dict(
        bbox_roi_extractor=roi_extractor,
        mask_roi_extractor=roi_extractor,
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=3),
        mask_head=dict(in_channels=128, conv_out_channels=64, num_convs=2,
                       num_classes=3)),
    # Fewer proposals and RoI samples than COCO's 2000/512: few objects per
    # image, and the mask branch's cost grows with the positive RoIs. The
    # plain RandomSampler instead of the release's OHEM: OHEM runs the box
    # head twice, and the 3-class set has no hard-example imbalance.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(type='RandomSampler', num=32))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
# Batch 4 (more updates per image seen), in-process loading: 2 cores leave
# nothing for loader workers.
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# Schedule: 6 short epochs (384 iterations of 4 images, 4-5 minutes on 2
# cores) instead of COCO's 12, AdamW instead of SGD (from scratch it
# converges in far fewer iterations), cosine decay after a short warm-up;
# evaluated at the end. (7 epochs: bbox mAP 0.577 -> 0.573 for seed 0,
# but 351 s instead of 317 s, too close to the demo's 6 minutes.)
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, by_epoch=True,
         eta_min_ratio=0.02)
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10.))
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
