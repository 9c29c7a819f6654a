# Copyright (c) mmfca contributors. All rights reserved.
"""FCA at SE's cost? The attention layer alone, forward + backward (and
inference), for

* SE: global average pooling + the same bias-free FCs + scale;
* release-style FCA: multiply a full-size copy by the filter bank, then
  sum (and, at other sizes, an adaptively pooled copy first);
  (both from mmfca.testing)
* mmfca's MultiSpectralAttention;

at the four ImageNet stage shapes and stages 1 and 4 of an 800x1216
detection input, in float32 and under bf16/fp16 autocast, NCHW and
channels_last. Two tables: times (medians of interleaved repeats) and the
device-independent counts of :mod:`mmfca.testing.op_counts` (kernels and
full-size passes per call).

Run: python benchmarks/bench_attention.py [--repeats N] [--counts-only]
     [--dtypes fp32,bf16,fp16] [--formats nchw,cl] [--shapes 0,4]
"""
import argparse

import torch

from timing import DEVICE, header, interleaved_medians, table  # noqa: I100
from mmfca.testing import attention  # noqa: I100
from mmfca.models import MultiSpectralAttention
from mmfca.testing import count_ops

# (name, shape, dct size); batch 32 at ImageNet, 2 at detection sizes
SHAPES = [
    ('ImageNet stage 1', (32, 256, 56, 56), 56),
    ('ImageNet stage 2', (32, 512, 28, 28), 28),
    ('ImageNet stage 3', (32, 1024, 14, 14), 14),
    ('ImageNet stage 4', (32, 2048, 7, 7), 7),
    ('800x1216 stage 1', (2, 256, 200, 304), 56),
    ('800x1216 stage 4', (2, 2048, 25, 38), 7),
]
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
FORMATS = {'nchw': torch.contiguous_format, 'cl': torch.channels_last}


IMPLS = {'SE': lambda layer, x: attention(layer, x, 'gap'),
         'release': lambda layer, x: attention(layer, x, 'release'),
         'mmfca': lambda layer, x: layer(x)}


def make_call(impl, layer, x, grad, autocast, train):
    """One forward (under autocast if asked) and, for training, backward
    outside autocast, as AMP recommends."""

    def call():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(train):
            with torch.autocast(DEVICE.type, dtype=autocast or torch.float32,
                                enabled=autocast is not None):
                out = impl(layer, x)
            if train:
                out.backward(grad)

    return call


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--counts-only', action='store_true')
    parser.add_argument('--dtypes', default='fp32,bf16,fp16')
    parser.add_argument('--formats', default='nchw,cl')
    parser.add_argument('--shapes', default=','.join(
        str(i) for i in range(len(SHAPES))))
    args = parser.parse_args()
    dtypes = args.dtypes.split(',')
    formats = args.formats.split(',')
    shapes = [SHAPES[int(i)] for i in args.shapes.split(',')]
    time_rows, count_rows = [], []
    for name, shape, dct in shapes:
        layer = MultiSpectralAttention(shape[1], dct, dct).to(DEVICE)
        for fmt in formats:
            for dtype in dtypes:
                autocast = DTYPES[dtype]
                x = torch.randn(shape, device=DEVICE).to(
                    autocast or torch.float32,
                    memory_format=FORMATS[fmt]).requires_grad_()
                grad = torch.randn_like(x)
                label = [name, 'x'.join(map(str, shape)), fmt, dtype]
                for train in (True, False):
                    calls = {k: make_call(f, layer, x, grad, autocast, train)
                             for k, f in IMPLS.items()}
                    for call in calls.values():
                        call()  # warm: caches, autotuning
                    counts = {k: count_ops(c, x.numel())
                              for k, c in calls.items()}
                    count_rows.append(label + [
                        'fwd+bwd' if train else 'infer', *(
                            f'{len(c.kernels)} / {len(c.full_size)}'
                            for c in counts.values())
                    ])
                    if args.counts_only:
                        continue
                    times = interleaved_medians(calls, args.repeats)
                    se = times['SE']
                    time_rows.append(label + [
                        'fwd+bwd' if train else 'infer',
                        *(f'{t * 1e3:.2f}' for t in times.values()),
                        *(f'{times[k] / se:.2f}' for k in list(IMPLS)[1:])
                    ])
                    print(time_rows[-1], flush=True)
    columns = ['shape', 'N x C x H x W', 'format', 'dtype', 'pass']
    if time_rows:
        print()
        print(header('Attention layer'))
        print(table(columns + [f'{k} ms' for k in IMPLS] +
                    [f'{k}/SE' for k in list(IMPLS)[1:]], time_rows))
        print(f'\nmedian of {args.repeats} interleaved repeats; backward '
              'outside autocast.\n')
    print(header('Attention layer: kernels / full-size passes per call'))
    print(table(columns + list(IMPLS), count_rows))


if __name__ == '__main__':
    main()
