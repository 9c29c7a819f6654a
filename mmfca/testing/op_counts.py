# Copyright (c) mmfca contributors. All rights reserved.
"""Device-independent cost proxies: how many ATen kernels a call dispatches
and how many of them read or write a full-size tensor.

Counted below autograd with a ``TorchDispatchMode``, so the forward, the
backward and every copy are seen as the backend (CPU or CUDA) sees them:
one entry per kernel-launching ATen op. Views (ops whose results alias an
input without writing it) and bare allocations are not kernels and are not
counted. A GPU launches about one kernel per counted op, and each op that
touches a full-size tensor is one pass over memory, so at small maps the
count bounds the launch overhead and at large maps the passes bound the
memory traffic. The tests pin these counts; times live in ``benchmarks/``.
"""
from typing import Callable, List, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: Ops that allocate, compare metadata, read a scalar or reshape without a
#: compute kernel (``is_same_size``: torch 2.1's gradient accumulation asks
#: it; ``_unsafe_view``: the view that ``matmul`` returns, undeclared as
#: one).
_NOT_KERNELS = ('empty', 'empty_strided', 'empty_like', 'new_empty',
                'new_empty_strided', '_local_scalar_dense', 'lift_fresh',
                'is_same_size', '_unsafe_view')


class OpCount(NamedTuple):
    """What one call dispatched."""
    kernels: List[str]  #: names of the kernel-launching ops, in order
    full_size: List[str]  #: those that read or write a full-size tensor

    def __str__(self):
        return (f'{len(self.kernels)} kernels, {len(self.full_size)} '
                f'full-size ({", ".join(self.full_size)})')


def _is_view(func) -> bool:
    return any(r.alias_info is not None and not r.alias_info.is_write
               for r in func._schema.returns)


class _Recorder(TorchDispatchMode):

    def __init__(self, full_numel):
        super().__init__()
        self.full_numel = full_numel
        self.kernels, self.full_size = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if not _is_view(func) and name not in _NOT_KERNELS:
            self.kernels.append(name)
            tensors = [
                t for t in tree_flatten((args, kwargs, out))[0]
                if isinstance(t, torch.Tensor)
            ]
            if any(t.numel() >= self.full_numel for t in tensors):
                self.full_size.append(name)
        return out


def count_ops(fn: Callable[[], object], full_numel: int) -> OpCount:
    """Run ``fn()`` once and count what it dispatches.

    Args:
        fn (callable): The call, e.g. ``lambda: layer(x).backward(g)``.
            Clear ``.grad`` of its leaves first, or gradient accumulation
            is counted too.
        full_numel (int): Elements of a full-size tensor (``N*C*H*W``).

    Returns:
        OpCount: The kernels and the full-size ones among them.
    """
    with _Recorder(full_numel) as rec:
        fn()
    return OpCount(rec.kernels, rec.full_size)
