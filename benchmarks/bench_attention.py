# Copyright (c) mmfca contributors. All rights reserved.
"""FCA at SE's cost? Forward+backward time and peak memory of

* SE: global average pooling + the same bias-free FCs + scale;
* release-style FCA: multiply a full-size copy by the filter bank, then
  sum (and, at other sizes, an adaptively pooled copy first);
* mmfca's MultiSpectralAttention (separable factors, pooling folded in);

at the four ImageNet stage shapes and at stages 1 and 4 of an 800x1216
detection input. Run: python benchmarks/bench_attention.py [--repeats N]
"""
import argparse

import torch
import torch.nn.functional as F

from mmfca.models import MultiSpectralAttention
from timing import (DEVICE, header, interleaved_medians, peak_memory_mb,
                    table)

# (name, shape, dct size); batch 32 at ImageNet, 2 at detection sizes
SHAPES = [
    ('ImageNet stage 1', (32, 256, 56, 56), 56),
    ('ImageNet stage 2', (32, 512, 28, 28), 28),
    ('ImageNet stage 3', (32, 1024, 14, 14), 14),
    ('ImageNet stage 4', (32, 2048, 7, 7), 7),
    ('800x1216 stage 1', (2, 256, 200, 304), 56),
    ('800x1216 stage 4', (2, 2048, 25, 38), 7),
]


def se_forward(layer, x):
    att = layer.fc(x.mean((2, 3)))
    return x * att[:, :, None, None]


def release_forward(layer, x):
    dct = layer.dct_layer
    pooled = x
    if x.shape[-2:] != (dct.dct_h, dct.dct_w):
        pooled = F.adaptive_avg_pool2d(x, (dct.dct_h, dct.dct_w))
    att = layer.fc(torch.sum(pooled * dct.weight, dim=[2, 3]))
    return x * att[:, :, None, None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=15)
    args = parser.parse_args()
    rows = []
    for name, shape, dct in SHAPES:
        layer = MultiSpectralAttention(shape[1], dct, dct).to(DEVICE)
        x = torch.randn(shape, device=DEVICE, requires_grad=True)
        grad = torch.randn(shape, device=DEVICE)
        impls = {
            'SE': lambda: se_forward(layer, x).backward(grad),
            'release FCA': lambda: release_forward(layer, x).backward(grad),
            'mmfca FCA': lambda: layer(x).backward(grad),
        }
        times = interleaved_medians(impls, args.repeats)
        mems = {k: peak_memory_mb(fn) for k, fn in impls.items()}
        se = times['SE']
        rows.append([
            name, 'x'.join(map(str, shape)),
            *(f'{times[k] * 1e3:.1f}' for k in impls),
            f'{times["release FCA"] / se:.2f}', f'{times["mmfca FCA"] / se:.2f}',
            *(f'{mems[k]:.0f}' for k in impls)
        ])
        print(rows[-1], flush=True)
    print()
    print(header('Attention layer, forward + backward'))
    print(table([
        'shape', 'N x C x H x W', 'SE ms', 'release ms', 'mmfca ms',
        'release/SE', 'mmfca/SE', 'SE MB', 'release MB', 'mmfca MB'
    ], rows))
    print(f'\nmedian of {args.repeats} interleaved repeats; peak MB: memory '
          'the call adds (CUDA allocator peak, or on CPU the peak of live '
          'tensor bytes from the profiler).')


if __name__ == '__main__':
    main()
