# Copyright (c) mmfca contributors. All rights reserved.
"""FCA at SE's cost in the network: one FcaNet-50 whose attention layers run
as SE (GAP + the same FCs), as the release's layer, or as mmfca's layer
(same weights in every variant, so only the attention differs):

* ImageNet train step: classifier at 224x224, forward + backward;
* detection backbone: FcaNet-50 as the detectors configure it (frozen stem
  and stage 1, norm_eval) at 800x1216, batch 2, forward + backward and
  inference;

in float32 and under bf16/fp16 autocast, NCHW and channels_last. Ratios
are time / SE's time, medians of interleaved repeats.

Run: python benchmarks/bench_network.py [--batch N] [--repeats N]
     [--dtypes fp32,bf16,fp16] [--formats nchw,cl] [--what imagenet,det]
     [--det-size 800,1216]
"""
import argparse
import functools
import types

import torch

import mmfca  # noqa: F401
from bench_attention import DTYPES, FORMATS
from timing import DEVICE, header, interleaved_medians, table  # noqa: I100
from mmfca.testing import channel_weights  # noqa: I100
from mmfca.models import MultiSpectralAttention

VARIANTS = ('SE', 'release', 'mmfca')


def set_attention(model, variant):
    """Make every FCA layer of ``model`` run as ``variant``. During
    inference every variant scales in place, as FcaNet's blocks do."""
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


def imagenet_model():
    from mmpretrain.models import ImageClassifier
    return ImageClassifier(
        backbone=dict(type='FcaNet', depth=50, out_indices=(3, ),
                      norm_eval=False),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048))


def detection_backbone():
    from mmfca.models import FcaNet
    return FcaNet(50, frozen_stages=1, norm_eval=True,
                  norm_cfg=dict(type='BN', requires_grad=True))


def run(model, x, autocast, train, fmt):
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


def bench(title, model, x, args, passes):
    rows = []
    model = model.to(DEVICE)
    for fmt in args.formats.split(','):
        model.to(memory_format=FORMATS[fmt])
        xf = x.to(memory_format=FORMATS[fmt])
        for dtype in args.dtypes.split(','):
            for train in passes:
                model.train(train)
                steps = {}
                for variant in VARIANTS:
                    step = run(model, xf, DTYPES[dtype], train, fmt)
                    steps[variant] = functools.partial(
                        variant_step, model, variant, step)
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


def variant_step(model, variant, step):
    """``step()`` with ``model``'s attention running as ``variant``."""
    set_attention(model, variant)
    step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int,
                        default=128 if DEVICE.type == 'cuda' else 8)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--dtypes', default='fp32,bf16,fp16')
    parser.add_argument('--formats', default='nchw,cl')
    parser.add_argument('--what', default='imagenet,det')
    parser.add_argument('--det-size', default='800,1216')
    args = parser.parse_args()
    if DEVICE.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    out = []
    torch.manual_seed(0)
    if 'imagenet' in args.what:
        x = torch.randn(args.batch, 3, 224, 224, device=DEVICE)
        out.append(bench(
            f'FcaNet-50 ImageNet train step, batch {args.batch}, 224x224',
            imagenet_model(), x, args, (True, )))
    if 'det' in args.what:
        h, w = map(int, args.det_size.split(','))
        x = torch.randn(2, 3, h, w, device=DEVICE)
        out.append(bench(f'FcaNet-50 detection backbone, batch 2, {h}x{w}',
                         detection_backbone(), x, args, (True, False)))
    print()
    print('\n\n'.join(out))
    print(f'\nmedian of {args.repeats} interleaved repeats; same weights '
          'in every variant; backward outside autocast; inference scales in '
          'place in every variant.')


if __name__ == '__main__':
    main()
