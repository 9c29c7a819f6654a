# Copyright (c) mmfca contributors. All rights reserved.
"""ResNet-50 vs MMPretrain's SE-ResNet-50 vs FcaNet-50: parameters, FLOPs
(mmengine's complexity analysis), forward+backward throughput at 224; and
Mask R-CNN R-50 vs FcaNet-50 inference time at 800x1216. Ratios are from
one run. Run: python benchmarks/bench_backbone.py [--batch N] [--repeats N]
"""
import argparse
import os.path as osp

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmfca  # noqa: F401
from timing import DEVICE, header, interleaved_medians, table

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def classifier(backbone):
    from mmpretrain.models import ImageClassifier
    return ImageClassifier(
        backbone=dict(depth=50, out_indices=(3, ), **backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048))


def se_bias_params(model):
    return sum(m.bias.numel() for n, m in model.named_modules()
               if '.se_layer.' in n and isinstance(m, torch.nn.Conv2d)
               and m.bias is not None)


def mask_rcnn(backbone_type):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs/mask_rcnn_fca50_coco.py'))
    cfg.model.backbone.init_cfg = None
    if backbone_type == 'ResNet':
        for key in ('reduction', 'freq_sel_method'):
            cfg.model.backbone.pop(key)
    cfg.model.backbone.type = backbone_type
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model).to(DEVICE).eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()

    models = {
        'ResNet-50': classifier(dict(type='ResNet')),
        'SE-ResNet-50': classifier(dict(type='SEResNet', se_ratio=16)),
        'FcaNet-50': classifier(dict(type='FcaNet', norm_eval=False)),
    }
    rows, flops = [], {}
    for name, model in models.items():
        model.eval()
        with torch.no_grad():  # FCA's module path, which jit can trace
            info = get_model_complexity_info(
                model, input_shape=(3, 224, 224), show_table=False,
                show_arch=False)
        flops[name] = info['flops']
        params = sum(p.numel() for p in model.parameters())
        rows.append([name, f'{params:,}',
                     f'{params - se_bias_params(model):,}',
                     f'{info["flops"] / 1e9:.3f}'])
    x = torch.randn(args.batch, 3, 224, 224, device=DEVICE)

    def step(model):
        model.zero_grad(set_to_none=True)
        model(x, mode='tensor').sum().backward()

    for model in models.values():
        model.to(DEVICE).train()
    times = interleaved_medians(
        {k: (lambda m=m: step(m)) for k, m in models.items()}, args.repeats)
    for row, name in zip(rows, models):
        row += [f'{args.batch / times[name]:.1f}',
                f'{times["SE-ResNet-50"] / times[name]:.3f}',
                f'{flops[name] / flops["SE-ResNet-50"]:.4f}']
    print(header('Backbones at 224x224 (ImageNet classifier, 1000 classes)'))
    print(table([
        'model', 'params', 'params without SE biases', 'GFLOPs',
        f'train img/s (batch {args.batch})', 'speed vs SE-ResNet-50',
        'FLOPs vs SE-ResNet-50'
    ], rows))
    print('\nSpeed vs SE-ResNet-50 is its time / this time (<1: slower).\n')

    dets = {'Mask R-CNN R-50': mask_rcnn('ResNet'),
            'Mask R-CNN FcaNet-50': mask_rcnn('FcaNet')}
    img = torch.randn(1, 3, 800, 1216, device=DEVICE)
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(800, 1216),
                                         ori_shape=(800, 1216),
                                         scale_factor=(1., 1.),
                                         batch_input_shape=(800, 1216),
                                         pad_shape=(800, 1216)))

    def infer(det):
        with torch.no_grad():
            det(img, [sample], mode='predict')

    times = interleaved_medians(
        {k: (lambda d=d: infer(d)) for k, d in dets.items()},
        max(3, args.repeats // 2), warmup=1)
    base = times['Mask R-CNN R-50']
    print(header('Mask R-CNN inference at 800x1216, batch 1'))
    print(table(['model', 'ms / image', 'ratio to R-50'],
                [[k, f'{t * 1e3:.0f}', f'{t / base:.3f}']
                 for k, t in times.items()]))


if __name__ == '__main__':
    main()
