# Copyright (c) mmfca contributors. All rights reserved.
"""The FCA layer's host cost per call, the device-free proxy of what a GPU
pays at detection batch sizes (where the GPU waits while Python and the
dispatcher issue the layer's kernels): microseconds per call at shapes
where the arithmetic is negligible, one thread, for SE, the release-style
layer and mmfca's layer (SE and the release from
mmfca.testing), inference and forward + backward, at a
filter-sized map and at one pooled to the filter.

SE and the release-style layer are timed as plain functions (the cheapest
SE there is, as issue 26 measured them); "SE module" is the same SE called
as a module, as every SE layer is (mmfca's layer pays that call too).

Each figure is the best of the interleaved rounds: the host's cost is a
floor that a shared machine's noise only adds to. On the project's shared
CPU machine the ratios still moved by up to about 0.1 between runs with
either statistic: compare several runs, not one.

Target (issue 26): mmfca <= 1.05x SE, never above the release-style layer.

Run: python benchmarks/bench_host_cost.py [--calls 300] [--repeats 15]
     [--breakdown]
"""
import argparse
import copy
import functools
import timeit
import types

import torch

from timing import header, interleaved_times, table  # noqa: I100
from mmfca.testing import attention  # noqa: I100
from mmfca.models import MultiSpectralAttention

# (name, input shape, DCT filter side)
SHAPES = [('filter-sized', (2, 64, 7, 7), 7),
          ('pooled to 7x7', (2, 64, 14, 14), 7)]


def implementations(layer):
    """name -> a function of ``x``: SE, SE as a module, the release-style
    layer and mmfca's, all with ``layer``'s FCs."""
    se_module = copy.deepcopy(layer)
    se_module.forward = types.MethodType(
        functools.partial(attention, squeeze='gap'), se_module)
    return {'SE': functools.partial(attention, layer, squeeze='gap'),
            'SE module': se_module,
            'release': functools.partial(attention, layer, squeeze='release'),
            'mmfca': layer}


def calls(impl, x, grad, train, number):
    """``number`` calls of ``impl``, with a backward each when training."""

    def run():
        with torch.set_grad_enabled(train):
            for _ in range(number):
                out = impl(x)
                if train:
                    out.backward(grad)

    return run


def breakdown(layer, x, number):
    """Microseconds of each step of mmfca's inference call, timed alone
    (best of 7 runs of ``number`` calls; the steps overlap in the call: an
    estimate of where the time goes)."""
    from mmfca.models.layers.dct_squeeze import cached_filters
    dct = layer.dct_layer
    n, c, h, w = x.shape
    filters = dct.filters(x)
    y = dct(x)
    att = layer.excite(y).view(n, c, 1, 1)
    steps = {
        'the whole call: layer(x)': lambda: layer(x),
        'layer.forward(x) (no module call)': lambda: layer.forward(x),
        'dct_layer(x)': lambda: dct(x),
        'dct_layer.forward(x) (no module call)': lambda: dct.forward(x),
        'check_input': lambda: dct.check_input(x),
        'filters (graph check + cache lookup)': lambda: dct.filters(x),
        'lru_cache lookup alone': lambda: cached_filters(
            dct._filter_spec, h, w, x.dtype, x.device),
        'view + mul (products)': lambda: x.view(n, 16, c // 16, h, w) *
        filters,
        'sum in float32 + view': lambda: (x.view(n, 16, c // 16, h, w) *
                                          filters).sum(
                                              (3, 4),
                                              dtype=torch.float32).view(n, c),
        'excite (2 linear, relu, sigmoid)': lambda: layer.excite(y),
        'view + scale': lambda: x * att.view(n, c, 1, 1),
        'SE: the whole call': lambda: attention(layer, x, 'gap'),
        'SE: x.mean((2, 3))': lambda: x.mean((2, 3)),
        'SE: fc (Sequential, 4 modules)': lambda: layer.fc(y),
        'SE: [:, :, None, None] + scale': lambda: x * att[:, :, 0, 0][:, :,
                                                                      None,
                                                                      None],
    }
    with torch.no_grad():
        best = {name: min(timeit.repeat(fn, number=number, repeat=7))
                for name, fn in steps.items()}
    return [[name, f'{t / number * 1e6:.2f}'] for name, t in best.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--calls', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--breakdown', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, shape, dct in SHAPES:
        torch.manual_seed(0)
        layer = MultiSpectralAttention(shape[1], dct, dct)
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)
        for train in (False, True):
            fns = {k: calls(f, x, grad, train, args.calls)
                   for k, f in implementations(layer).items()}
            times = {k: min(t) / args.calls * 1e6 for k, t in
                     interleaved_times(fns, args.repeats).items()}
            rows.append([
                name, 'x'.join(map(str, shape)),
                'fwd+bwd' if train else 'infer',
                *(f'{t:.1f}' for t in times.values()),
                f'{times["mmfca"] / times["SE"]:.2f}',
                f'{times["mmfca"] / times["SE module"]:.2f}',
                f'{times["mmfca"] / times["release"]:.2f}'
            ])
            print(rows[-1], flush=True)
    print()
    print(header('FCA layer host cost per call (us), one thread'))
    print(table(['map', 'N x C x H x W', 'pass', 'SE', 'SE module',
                 'release', 'mmfca', 'mmfca/SE', 'mmfca/SE module',
                 'mmfca/release'], rows))
    print(f'\nbest of {args.repeats} interleaved rounds of {args.calls} '
          'calls each.')
    if args.breakdown:
        x = torch.randn(SHAPES[1][1])
        layer = MultiSpectralAttention(x.shape[1], 7, 7)
        print()
        print(header('Steps of one inference call (us, each timed alone), '
                     f'{"x".join(map(str, x.shape))}'))
        print(table(['step', 'us'], breakdown(layer, x, args.calls * 10)))


if __name__ == '__main__':
    main()
