# Copyright (c) mmfca contributors. All rights reserved.
"""Shared helpers of the benchmarks: device choice, interleaved medians,
memory, table printing. Benchmarks run on demand, never in the tests."""
import platform
import statistics
import time
from datetime import date

import torch

DEVICE = torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def sync():
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize()


def interleaved_times(fns, repeats, warmup=2):
    """Seconds of each callable in each of ``repeats`` rounds, run
    round-robin so that machine noise hits all of them alike.

    Args:
        fns (dict[str, callable]): Name -> callable.
        repeats (int): Timed rounds.
        warmup (int): Untimed rounds first.

    Returns:
        dict[str, list[float]]: Name -> seconds of each round.
    """
    times = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def interleaved_medians(fns, repeats, warmup=2):
    """Median seconds of each callable (see :func:`interleaved_times`)."""
    return {name: statistics.median(t)
            for name, t in interleaved_times(fns, repeats, warmup).items()}


def peak_memory_mb(fn):
    """Peak memory a call adds, in MB: CUDA's allocator peak on GPU; on CPU
    the peak of live tensor bytes replayed from the profiler's allocation
    events (tensors alive before the call are not counted)."""
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        fn()
    live = peak = 0
    events = sorted((e for e in prof.events() if e.cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    for e in events:
        live += e.cpu_memory_usage
        peak = max(peak, live)
    return peak / 2**20


def machine():
    if DEVICE.type == 'cuda':
        return torch.cuda.get_device_name()
    return (f'{platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads')


def header(title):
    return (f'## {title}\n\n{date.today()}, torch {torch.__version__}, '
            f'{DEVICE.type} ({machine()})\n')


def table(columns, rows):
    """A Markdown table."""
    lines = ['| ' + ' | '.join(columns) + ' |',
             '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)
