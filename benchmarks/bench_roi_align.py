# Copyright (c) mmfca contributors. All rights reserved.
"""RoIAlign on the CPU: mmcv's op against mmfca's MatmulRoIAlign (the same
result as a matrix product), forward + backward, at the demo's sizes (4
images of 128 px, FPN levels P3-P5 of 128 channels; 7x7 box RoIs and 14x14
mask RoIs) and at more RoIs per image.
Run: python benchmarks/bench_roi_align.py [--repeats N]
"""
import argparse

import torch
from mmcv.ops import RoIAlign

from mmfca.models.roi_heads import MatmulRoIAlign
from timing import header, interleaved_medians, table

# (name, feature shape, spatial scale, output size, RoIs per image)
CASES = [
    ('box RoIs, P3', (4, 128, 16, 16), 1 / 8, 7, 32),
    ('box RoIs, P3', (4, 128, 16, 16), 1 / 8, 7, 128),
    ('box RoIs, P3', (4, 128, 16, 16), 1 / 8, 7, 512),
    ('mask RoIs, P3', (4, 128, 16, 16), 1 / 8, 14, 8),
    ('mask RoIs, P3', (4, 128, 16, 16), 1 / 8, 14, 32),
    ('box RoIs, P2 (32x32)', (4, 128, 32, 32), 1 / 4, 7, 128),
]


def random_rois(num_images, per_image, extent):
    xy = torch.rand(num_images * per_image, 2) * extent * 0.8
    wh = torch.rand(num_images * per_image, 2) * extent * 0.4 + 8
    ids = torch.arange(num_images).repeat_interleave(per_image)[:, None]
    return torch.cat([ids.float(), xy, xy + wh], 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for name, shape, scale, size, per_image in CASES:
        feats = torch.randn(shape, requires_grad=True)
        rois = random_rois(shape[0], per_image, shape[-1] / scale)
        grad = torch.randn(len(rois), shape[1], size, size)
        layers = {
            'mmcv': RoIAlign(size, scale, sampling_ratio=2),
            'matmul': MatmulRoIAlign(size, scale, sampling_ratio=2),
        }
        impls = {k: (lambda m=m: m(feats, rois).backward(grad))
                 for k, m in layers.items()}
        times = interleaved_medians(impls, args.repeats)
        rows.append([
            name, 'x'.join(map(str, shape)), f'{size}x{size}', per_image,
            f'{times["mmcv"] * 1e3:.1f}', f'{times["matmul"] * 1e3:.1f}',
            f'{times["mmcv"] / times["matmul"]:.1f}'
        ])
        print(rows[-1], flush=True)
    print()
    print(header('RoIAlign, forward + backward (sampling_ratio 2)'))
    print(table(['RoIs', 'features', 'output', 'RoIs/image', 'mmcv ms',
                 'matmul ms', 'speed-up'], rows))
    print(f'\nmedian of {args.repeats} interleaved repeats.')


if __name__ == '__main__':
    main()
