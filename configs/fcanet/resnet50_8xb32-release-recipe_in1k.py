# ResNet-50 on ImageNet with the FcaNet release's recipe: the baseline of
# the paper's comparison. FcaNet and SE-ResNet configs inherit this file and
# change only the backbone, so the three differ in nothing else.
#   100 epochs; SGD lr 0.1 x (total batch / 256), momentum 0.9, wd 1e-4;
#   5 linear warm-up epochs, then cosine annealing over the other 95;
#   label smoothing 0.1; 224 random-resized crops + flip (MMPretrain's
#   ImageNet pipeline: resize 256, centre crop 224 for val).
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'

model = dict(
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))

# 8 GPUs x 32 images = 256: lr 0.1 (auto_scale_lr keeps lr/256 fixed).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=95,
        by_epoch=True,
        begin=5,
        end=100,
        eta_min=0)
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=256)
