# Copyright (c) mmfca contributors. All rights reserved.
"""FCA at SE's cost in whole networks, one mode each:

* ``variants``: one FcaNet-50 whose attention layers run as SE (GAP + the
  same FCs), as the release's layer, or as mmfca's layer (same weights in
  every variant, so only the attention differs): the ImageNet train step
  (classifier at 224x224) and the detection backbone (frozen stem and
  stage 1, norm_eval, as the detectors configure it) at 800x1216, batch 2,
  forward + backward and inference; float32 and bf16/fp16 autocast, NCHW
  and channels_last; medians of interleaved repeats;
* ``compile``: the detection backbone and its SE variant, each compiled
  once with torch.compile (inductor), timed interleaved beside eager;
* ``backbones``: ResNet-50, MMPretrain's SE-ResNet-50 and FcaNet-50
  classifiers: parameters, FLOPs (mmengine's complexity analysis, as
  MMDetection's and MMPretrain's get_flops.py), train throughput at 224;
  and Mask R-CNN R-50 vs FcaNet-50 inference at 800x1216;
* ``host``: FcaNet-50 against MMPretrain's SE-ResNet-50 where the host's
  work dominates (batch 2, 32 and 64 px, one thread), eval and train, best
  of interleaved rounds: the whole network's host cost per step.

Ratios are time / SE's time from one run.

Run (from benchmarks/):
    python bench_network.py variants [--batch N] [--repeats 7]
        [--dtypes fp32,bf16,fp16] [--formats nchw,cl] [--what imagenet,det]
        [--det-size 800,1216]
    python bench_network.py compile [--size 800,1216] [--batch 2]
        [--passes infer,train] [--repeats 7]
    python bench_network.py backbones [--batch 16] [--repeats 5]
        [--det-size 800,1216]
    python bench_network.py host [--sizes 32,64] [--batch 2] [--repeats 21]
"""
import argparse
import copy
import functools
import os.path as osp
import types

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import DefaultScope
from timing import (DEVICE, header, interleaved_medians, interleaved_times,
                    table)

import mmfca  # noqa: F401
from mmfca.models import MultiSpectralAttention

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
FORMATS = {'nchw': torch.contiguous_format, 'cl': torch.channels_last}
VARIANTS = ('SE', 'release', 'mmfca')


def set_attention(model, variant):
    """Make every FCA layer of ``model`` run as ``variant``. During
    inference every variant scales in place, as FcaNet's blocks do."""
    from mmfca.testing import channel_weights  # (host runs on older trees)
    squeeze = {'SE': 'gap', 'release': 'release'}.get(variant)
    # 'mmfca': the class's own forward
    for m in model.modules():
        if not isinstance(m, MultiSpectralAttention):
            continue
        m.__dict__.pop('forward', None)  # back to the class's own
        if squeeze is None:
            continue

        def forward(self, x, squeeze=squeeze):
            att = channel_weights(self, x, squeeze).to(x.dtype)
            return x * att if torch.is_grad_enabled() else x.mul_(att)

        m.forward = types.MethodType(forward, m)


def classifier(backbone):
    """An ImageNet classifier (1000 classes) on a depth-50 ``backbone``."""
    from mmpretrain.models import ImageClassifier
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassifier(
            backbone=dict(depth=50, out_indices=(3, ), **backbone),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=2048))


def detection_backbone():
    from mmfca.models import FcaNet
    return FcaNet(50, frozen_stages=1, norm_eval=True,
                  norm_cfg=dict(type='BN', requires_grad=True))


def run(model, x, autocast, train):
    """One step: forward under autocast, backward outside it."""

    def step():
        model.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(train):
            with torch.autocast(DEVICE.type, dtype=autocast or torch.float32,
                                enabled=autocast is not None):
                out = model(x)
            loss = sum(o.float().sum() for o in (
                out if isinstance(out, (tuple, list)) else [out]))
            if train:
                loss.backward()

    return step


def variant_step(model, variant, step):
    """``step()`` with ``model``'s attention running as ``variant``."""
    set_attention(model, variant)
    step()


def bench_variants(title, model, x, args, passes):
    rows = []
    model = model.to(DEVICE)
    for fmt in args.formats.split(','):
        model.to(memory_format=FORMATS[fmt])
        xf = x.to(memory_format=FORMATS[fmt])
        for dtype in args.dtypes.split(','):
            for train in passes:
                model.train(train)
                step = run(model, xf, DTYPES[dtype], train)
                steps = {v: functools.partial(variant_step, model, v, step)
                         for v in VARIANTS}
                times = interleaved_medians(steps, args.repeats)
                se = times['SE']
                rows.append([
                    fmt, dtype, 'fwd+bwd' if train else 'infer',
                    *(f'{times[v] * 1e3:.1f}' for v in VARIANTS),
                    *(f'{times[v] / se:.3f}' for v in VARIANTS[1:])
                ])
                print(title, rows[-1], flush=True)
    set_attention(model, 'mmfca')
    return header(title) + '\n' + table(
        ['format', 'dtype', 'pass', *(f'{v} ms' for v in VARIANTS),
         *(f'{v}/SE' for v in VARIANTS[1:])], rows)


def run_variants(args):
    if DEVICE.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    batch = args.batch or (128 if DEVICE.type == 'cuda' else 8)
    out = []
    torch.manual_seed(0)
    if 'imagenet' in args.what:
        x = torch.randn(batch, 3, 224, 224, device=DEVICE)
        out.append(bench_variants(
            f'FcaNet-50 ImageNet train step, batch {batch}, 224x224',
            classifier(dict(type='FcaNet', norm_eval=False)), x, args,
            (True, )))
    if 'det' in args.what:
        h, w = map(int, args.det_size.split(','))
        x = torch.randn(2, 3, h, w, device=DEVICE)
        out.append(bench_variants(
            f'FcaNet-50 detection backbone, batch 2, {h}x{w}',
            detection_backbone(), x, args, (True, False)))
    print()
    print('\n\n'.join(out))
    print(f'\nmedian of {args.repeats} interleaved repeats; same weights '
          'in every variant; backward outside autocast; inference scales in '
          'place in every variant.')


def run_compile(args):
    h, w = map(int, args.size.split(','))
    torch.manual_seed(0)
    fca = detection_backbone().to(DEVICE)
    se = copy.deepcopy(fca)
    set_attention(se, 'SE')
    x = torch.randn(args.batch, 3, h, w, device=DEVICE)
    rows = []
    for train in [p == 'train' for p in args.passes.split(',')]:
        steps = {}
        for name, model in (('SE', se), ('FCA', fca)):
            model.train(train)
            steps[f'{name} eager'] = run(model, x, None, train)
            steps[f'{name} compiled'] = run(torch.compile(model), x, None,
                                            train)
            steps[f'{name} compiled']()  # compile
        times = interleaved_medians(steps, args.repeats)
        rows.append(['fwd+bwd' if train else 'infer',
                     *(f'{t * 1e3:.1f}' for t in times.values()),
                     f'{times["FCA eager"] / times["SE eager"]:.3f}',
                     f'{times["FCA compiled"] / times["SE compiled"]:.3f}'])
        print(rows[-1], flush=True)
    print()
    print(header(f'Compiled FcaNet-50 vs compiled SE-ResNet-50, detection '
                 f'backbone, batch {args.batch}, {h}x{w}'))
    print(table(['pass', *(f'{k} ms' for k in steps), 'FCA/SE eager',
                 'FCA/SE compiled'], rows))
    print(f'\nmedians of {args.repeats} interleaved repeats; inductor '
          f'(torch.compile defaults); float32 NCHW.')


def se_bias_params(model):
    return sum(m.bias.numel() for n, m in model.named_modules()
               if '.se_layer.' in n and isinstance(m, torch.nn.Conv2d)
               and m.bias is not None)


def mask_rcnn(backbone_type):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/det/mask-rcnn_fca50_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    if backbone_type == 'ResNet':
        for key in ('reduction', 'freq_sel_method'):
            cfg.model.backbone.pop(key)
    cfg.model.backbone.type = backbone_type
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model).to(DEVICE).eval()


def run_backbones(args):
    models = {
        'ResNet-50': classifier(dict(type='ResNet')),
        'SE-ResNet-50': classifier(dict(type='SEResNet', se_ratio=16)),
        'FcaNet-50': classifier(dict(type='FcaNet', norm_eval=False)),
    }
    rows, flops = [], {}
    for name, model in models.items():
        model.eval()
        with torch.no_grad():
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
    h, w = map(int, args.det_size.split(','))
    img = torch.randn(1, 3, h, w, device=DEVICE)
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
        batch_input_shape=(h, w), pad_shape=(h, w)))

    def infer(det):
        with torch.no_grad():
            det(img, [sample], mode='predict')

    times = interleaved_medians(
        {k: (lambda d=d: infer(d)) for k, d in dets.items()},
        max(3, args.repeats // 2), warmup=1)
    base = times['Mask R-CNN R-50']
    print(header(f'Mask R-CNN inference at {h}x{w}, batch 1'))
    print(table(['model', 'ms / image', 'ratio to R-50'],
                [[k, f'{t * 1e3:.0f}', f'{t / base:.3f}']
                 for k, t in times.items()]))


def run_host(args):
    from mmpretrain.models.backbones import SEResNet

    from mmfca.models import FcaNet
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nets = {'SE-ResNet-50': SEResNet(50), 'FcaNet-50': FcaNet(50)}
    rows = []
    for size in map(int, args.sizes.split(',')):
        x = torch.randn(args.batch, 3, size, size)
        for train in (False, True):
            for net in nets.values():
                net.train(train)
            steps = {k: run(net, x, None, train) for k, net in nets.items()}
            # best of the rounds: the host's cost is a floor that a shared
            # machine's noise only adds to
            best = {k: min(t) for k, t in
                    interleaved_times(steps, args.repeats).items()}
            rows.append([f'{size}x{size}', 'fwd+bwd' if train else 'eval',
                         *(f'{t * 1e3:.1f}' for t in best.values()),
                         f'{best["FcaNet-50"] / best["SE-ResNet-50"]:.3f}'])
            print(rows[-1], flush=True)
    print()
    print(header(f'FcaNet-50 vs MMPretrain SE-ResNet-50, host-bound: batch '
                 f'{args.batch}, one thread'))
    print(table(['input', 'pass', *(f'{k} ms' for k in nets),
                 'FcaNet/SE'], rows))
    print(f'\nbest of {args.repeats} interleaved rounds (backbones alone, '
          'random weights, loss = sum of the stage outputs).')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest='mode', required=True)
    variants = modes.add_parser('variants')
    variants.add_argument('--batch', type=int, default=None,
                          help='ImageNet batch (default 128 on CUDA, 8)')
    variants.add_argument('--repeats', type=int, default=7)
    variants.add_argument('--dtypes', default='fp32,bf16,fp16')
    variants.add_argument('--formats', default='nchw,cl')
    variants.add_argument('--what', default='imagenet,det')
    variants.add_argument('--det-size', default='800,1216')
    compiled = modes.add_parser('compile')
    compiled.add_argument('--size', default='800,1216')
    compiled.add_argument('--batch', type=int, default=2)
    compiled.add_argument('--passes', default='infer')
    compiled.add_argument('--repeats', type=int, default=7)
    backbones = modes.add_parser('backbones')
    backbones.add_argument('--batch', type=int, default=16)
    backbones.add_argument('--repeats', type=int, default=5)
    backbones.add_argument('--det-size', default='800,1216')
    host = modes.add_parser('host')
    host.add_argument('--sizes', default='32,64')
    host.add_argument('--batch', type=int, default=2)
    host.add_argument('--repeats', type=int, default=21)
    args = parser.parse_args()
    {'variants': run_variants, 'compile': run_compile,
     'backbones': run_backbones, 'host': run_host}[args.mode](args)


if __name__ == '__main__':
    main()
