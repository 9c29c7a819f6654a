# Copyright (c) mmfca contributors. All rights reserved.
"""The FCA layer alone against SE and the release's layer, one mode each:

* ``time``: forward + backward and inference times at the four ImageNet
  stage shapes and stages 1 and 4 of an 800x1216 detection input, in
  float32 and bf16/fp16 autocast, NCHW and channels_last (medians of
  interleaved repeats), then the ``counts`` table;
* ``counts``: kernels / full-size passes per call
  (:func:`mmfca.testing.count_ops`; device-independent, pinned by
  tests/models/layers/test_precision_cost.py);
* ``host``: the host's cost per call, microseconds at shapes where the
  arithmetic is negligible, one thread (what a GPU pays at detection batch
  sizes, where it waits while Python and the dispatcher issue the
  kernels); ``--breakdown`` times each step of an inference call;
* ``profile``: torch.profiler's table of device kernels (CUDA, or CPU ops
  without one), one shape, format and dtype at a time.

SE is global average pooling + the layer's own FCs + scale; the release's
layer multiplies a full-size copy by the filter bank and sums (pooling a
copy to the filter size first at other sizes); both from
:mod:`mmfca.testing`. mmfca's is ``MultiSpectralAttention``.

Run (from benchmarks/):
    python bench_layer.py time [--repeats 15] [--dtypes fp32,bf16,fp16]
        [--formats nchw,cl] [--shapes 0,1,2,3,4,5]
    python bench_layer.py counts [--dtypes ...] [--formats ...] [--shapes ...]
    python bench_layer.py host [--calls 300] [--repeats 15] [--breakdown]
    python bench_layer.py profile [--shapes 0,4] [--dtypes fp32]
        [--formats nchw] [--calls 20] [--rows 12]
"""
import argparse
import copy
import functools
import timeit
import types

import torch
from timing import (DEVICE, header, interleaved_medians, interleaved_times,
                    sync, table)

from mmfca.models import MultiSpectralAttention
from mmfca.testing import attention, count_ops

# (name, shape, dct size); batch 32 at ImageNet, 2 at detection sizes
SHAPES = [
    ('ImageNet stage 1', (32, 256, 56, 56), 56),
    ('ImageNet stage 2', (32, 512, 28, 28), 28),
    ('ImageNet stage 3', (32, 1024, 14, 14), 14),
    ('ImageNet stage 4', (32, 2048, 7, 7), 7),
    ('800x1216 stage 1', (2, 256, 200, 304), 56),
    ('800x1216 stage 4', (2, 2048, 25, 38), 7),
]
#: compute-negligible shapes of the ``host`` mode: filter-sized and pooled
HOST_SHAPES = [('filter-sized', (2, 64, 7, 7), 7),
               ('pooled to 7x7', (2, 64, 14, 14), 7)]
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


def cases(args):
    """(label, layer, x, grad, autocast, train) for every shape, format,
    dtype and pass asked for."""
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
                label = [name, 'x'.join(map(str, shape)), fmt, dtype]
                for train in (True, False):
                    yield (label + ['fwd+bwd' if train else 'infer'], layer,
                           x, grad, autocast, train)


def run_time(args, counts_only=False):
    time_rows, count_rows = [], []
    for label, layer, x, grad, autocast, train in cases(args):
        calls = {k: make_call(f, layer, x, grad, autocast, train)
                 for k, f in IMPLS.items()}
        for call in calls.values():
            call()  # warm: caches, autotuning
        counts = {k: count_ops(c, x.numel()) for k, c in calls.items()}
        count_rows.append(label + [f'{len(c.kernels)} / {len(c.full_size)}'
                                   for c in counts.values()])
        if counts_only:
            continue
        times = interleaved_medians(calls, args.repeats)
        se = times['SE']
        time_rows.append(label +
                         [f'{t * 1e3:.2f}' for t in times.values()] +
                         [f'{times[k] / se:.2f}' for k in list(IMPLS)[1:]])
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


def host_implementations(layer):
    """name -> a function of ``x``: SE as a function (the cheapest SE there
    is), SE called as a module (as every SE layer is; mmfca's layer pays
    the module call too), the release-style layer and mmfca's, all with
    ``layer``'s FCs."""
    se_module = copy.deepcopy(layer)
    se_module.forward = types.MethodType(
        functools.partial(attention, squeeze='gap'), se_module)
    return {'SE': functools.partial(attention, layer, squeeze='gap'),
            'SE module': se_module,
            'release': functools.partial(attention, layer, squeeze='release'),
            'mmfca': layer}


def host_calls(impl, x, grad, train, number):
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
    from mmfca.models.layers.dct_squeeze import cached_fca_filters
    from mmfca.utils.amp import autocast_enabled
    dct = layer.dct_layer
    n, c, h, w = x.shape
    groups = len(dct.grid_freqs)
    filters = dct.filters(x)
    y = dct(x)
    att = layer.excite(y).view(n, c, 1, 1)
    fc1, relu, fc2, sigmoid = list(layer.fc)
    steps = {
        'the whole call: layer(x)': lambda: layer(x),
        'layer.forward(x) (no module call)': lambda: layer.forward(x),
        'dct_layer(x)': lambda: dct(x),
        'dct_layer.forward(x) (no module call)': lambda: dct.forward(x),
        'check_input': lambda: dct.check_input(x),
        'filters (graph check + cache lookup)': lambda: dct.filters(x),
        'lru_cache lookup alone': lambda: cached_fca_filters(
            dct._filters_key, h, w, x.dtype, x.device),
        'view + mul (products)':
        lambda: x.view(n, groups, c // groups, h, w) * filters,
        'sum in float32 + view':
        lambda: (x.view(n, groups, c // groups, h, w) * filters).sum(
            (3, 4), dtype=torch.float32).view(n, c),
        'excite (fc: Sequential, 4 modules)': lambda: layer.excite(y),
        'autocast check': lambda: autocast_enabled(y.device.type),
        'fc(y) (Sequential, 4 modules)': lambda: layer.fc(y),
        'fc.forward(y) (no Sequential call)': lambda: layer.fc.forward(y),
        'the 4 modules alone': lambda: sigmoid(fc2(relu(fc1(y)))),
        'the 4 modules\' forwards': lambda: sigmoid.forward(fc2.forward(
            relu.forward(fc1.forward(y)))),
        'view + scale': lambda: x * att.view(n, c, 1, 1),
        'SE: the whole call': lambda: attention(layer, x, 'gap'),
        'SE: x.mean((2, 3))': lambda: x.mean((2, 3)),
    }
    with torch.no_grad():
        best = {name: min(timeit.repeat(fn, number=number, repeat=7))
                for name, fn in steps.items()}
    return [[name, f'{t / number * 1e6:.2f}'] for name, t in best.items()]


def run_host(args):
    torch.set_num_threads(1)
    rows = []
    for name, shape, dct in HOST_SHAPES:
        torch.manual_seed(0)
        layer = MultiSpectralAttention(shape[1], dct, dct)
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)
        for train in (False, True):
            fns = {k: host_calls(f, x, grad, train, args.calls)
                   for k, f in host_implementations(layer).items()}
            # best of the rounds: the host's cost is a floor that a shared
            # machine's noise only adds to (ratios still move by up to ~0.1
            # between runs there: compare several runs)
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
        x = torch.randn(HOST_SHAPES[1][1])
        layer = MultiSpectralAttention(x.shape[1], 7, 7)
        print()
        print(header('Steps of one inference call (us, each timed alone), '
                     f'{"x".join(map(str, x.shape))}'))
        print(table(['step', 'us'], breakdown(layer, x, args.calls * 10)))


def run_profile(args):
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    sort = 'self_cpu_time_total'
    if DEVICE.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        sort = 'self_cuda_time_total'
    print(header('FCA layer profile'))
    for label, layer, x, grad, autocast, train in cases(args):
        for impl, fn in IMPLS.items():
            call = make_call(fn, layer, x, grad, autocast, train)
            call()  # warm: caches, autotuning
            sync()
            with profile(activities=activities) as prof:
                for _ in range(args.calls):
                    call()
                sync()
            print(f'\n### {" ".join(label)}: {impl} ({args.calls} calls)\n')
            print(prof.key_averages().table(sort_by=sort,
                                            row_limit=args.rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest='mode', required=True)
    every = ','.join(str(i) for i in range(len(SHAPES)))
    for mode in ('time', 'counts', 'profile'):
        sub = modes.add_parser(mode)
        profiling = mode == 'profile'
        sub.add_argument('--shapes', default='0,4' if profiling else every,
                         help=f'indices into SHAPES (0-{len(SHAPES) - 1})')
        sub.add_argument('--dtypes',
                         default='fp32' if profiling else 'fp32,bf16,fp16')
        sub.add_argument('--formats',
                         default='nchw' if profiling else 'nchw,cl')
        if mode == 'time':
            sub.add_argument('--repeats', type=int, default=15)
        if profiling:
            sub.add_argument('--calls', type=int, default=20)
            sub.add_argument('--rows', type=int, default=12)
    host = modes.add_parser('host')
    host.add_argument('--calls', type=int, default=300)
    host.add_argument('--repeats', type=int, default=15)
    host.add_argument('--breakdown', action='store_true')
    args = parser.parse_args()
    if args.mode == 'time':
        run_time(args)
    elif args.mode == 'counts':
        run_time(args, counts_only=True)
    elif args.mode == 'host':
        run_host(args)
    else:
        run_profile(args)


if __name__ == '__main__':
    main()
