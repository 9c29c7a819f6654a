# Copyright (c) mmfca contributors. All rights reserved.
"""Compiled FcaNet-50 against compiled SE-ResNet-50 (torch.compile,
inductor): the FcaNet-50 detection backbone (frozen stem and stage 1,
norm_eval) and the same network whose attention layers run as SE (GAP +
the same FCs, same weights; see bench_network.py), each compiled once,
then timed in one run, interleaved. Eager times beside them.

Run: python benchmarks/bench_compile.py [--size 800,1216] [--batch 2]
     [--passes infer,train] [--repeats 7]
"""
import argparse
import copy

import torch

from bench_network import detection_backbone, run, set_attention
from timing import DEVICE, header, interleaved_medians, table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='800,1216')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--passes', default='infer')
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args()
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
            steps[f'{name} eager'] = run(model, x, None, train, 'nchw')
            steps[f'{name} compiled'] = run(torch.compile(model), x, None,
                                            train, 'nchw')
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


if __name__ == '__main__':
    main()
