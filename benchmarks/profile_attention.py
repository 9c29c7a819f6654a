# Copyright (c) mmfca contributors. All rights reserved.
"""Where the FCA layer's time goes, kernel by kernel: torch.profiler's
table of device kernels (CUDA, or CPU ops on a machine without one) for SE,
the release-style layer and mmfca's layer, one shape, format and dtype at
a time, forward + backward and inference. The benchmarks give the ratios;
this says which kernel makes them (e.g. why mmfca's squeeze costs more than
the release's same products and sum at a filter-sized map on the H200).

Run: python benchmarks/profile_attention.py [--shapes 0,4] [--dtypes fp32]
     [--formats nchw] [--calls 20] [--rows 12]
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from bench_attention import DTYPES, FORMATS, IMPLS, SHAPES, make_call
from mmfca.models import MultiSpectralAttention
from timing import DEVICE, header, sync


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shapes', default='0,4')
    parser.add_argument('--dtypes', default='fp32')
    parser.add_argument('--formats', default='nchw')
    parser.add_argument('--calls', type=int, default=20)
    parser.add_argument('--rows', type=int, default=12)
    args = parser.parse_args()
    activities = [ProfilerActivity.CPU]
    sort = 'self_cpu_time_total'
    if DEVICE.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        sort = 'self_cuda_time_total'
    print(header('FCA layer profile'))
    for i in args.shapes.split(','):
        name, shape, dct = SHAPES[int(i)]
        layer = MultiSpectralAttention(shape[1], dct, dct).to(DEVICE)
        for fmt in args.formats.split(','):
            for dtype in args.dtypes.split(','):
                autocast = DTYPES[dtype]
                x = torch.randn(shape, device=DEVICE).to(
                    autocast or torch.float32,
                    memory_format=FORMATS[fmt]).requires_grad_()
                grad = torch.randn_like(x)
                for train in (True, False):
                    for impl, fn in IMPLS.items():
                        call = make_call(fn, layer, x, grad, autocast, train)
                        call()  # warm: caches, autotuning
                        sync()
                        with profile(activities=activities) as prof:
                            for _ in range(args.calls):
                                call()
                            sync()
                        print(f'\n### {name} {tuple(shape)} {fmt} {dtype} '
                              f'{"fwd+bwd" if train else "infer"}: {impl} '
                              f'({args.calls} calls)\n')
                        print(prof.key_averages().table(
                            sort_by=sort, row_limit=args.rows))


if __name__ == '__main__':
    main()
