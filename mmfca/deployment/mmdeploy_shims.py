# Copyright (c) mmfca contributors. All rights reserved.
"""What MMDeploy 1.3.1 (written for torch <= 2.1) needs from torch >= 2.9,
applied only inside :func:`mmdeploy_export_shims`, on those versions only:

* ``dynamo_false_by_default``: torch >= 2.9 exports with ``dynamo=True``
  by default (pytorch/pytorch#159646), where MMDeploy's rewriters never run
  and ``onnxscript`` is needed; MMDeploy passes no ``dynamo``, so the
  default is made ``False`` again (an explicit one is kept).
* ``cast_long_symbolic``: torch >= 2.9 dropped
  ``torch.onnx.symbolic_opset9._cast_Long`` (pytorch/pytorch#161323,
  #164641), which MMDeploy's RoIAlign symbolic imports; the shim is the
  one ``Cast`` to int64 it was.
"""
import contextlib
import functools
import re
from typing import Iterator, List, Optional, Tuple

import torch

#: The torch release from which each shim is applied.
SHIMS = {'dynamo_false_by_default': (2, 9), 'cast_long_symbolic': (2, 9)}


def torch_release(version: Optional[str] = None) -> Tuple[int, ...]:
    """``(2, 14, 1)`` from ``'2.14.1+cu130'`` (default: this torch)."""
    numbers = re.match(r'\d+(\.\d+)*', version or torch.__version__)
    return tuple(int(n) for n in numbers.group(0).split('.'))


def needed_shims(version: Optional[str] = None) -> List[str]:
    """The shims that torch ``version`` (default: this one) needs."""
    return [name for name, since in SHIMS.items()
            if torch_release(version) >= since]


def _cast_long(g, input, non_blocking):
    """torch <= 2.8's ``symbolic_opset9._cast_Long``: a Cast to int64."""
    return g.op('Cast', input, to_i=7)  # ONNX's TensorProto.INT64


@contextlib.contextmanager
def mmdeploy_export_shims(version: Optional[str] = None) -> Iterator[list]:
    """Apply the shims torch ``version`` (default: this one; tests pass
    others) needs inside the ``with`` block, and yield their names; torch
    is restored when it ends."""
    import torch.onnx.symbolic_opset9 as opset9
    export, applied = torch.onnx.export, []
    try:
        for name in needed_shims(version):
            if name == 'dynamo_false_by_default':
                torch.onnx.export = functools.wraps(export)(
                    lambda *args, dynamo=False, **kwargs: export(
                        *args, dynamo=dynamo, **kwargs))
            elif not hasattr(opset9, '_cast_Long'):
                opset9._cast_Long = _cast_long
            else:
                continue
            applied.append(name)
        yield applied
    finally:
        torch.onnx.export = export
        if 'cast_long_symbolic' in applied:
            del opset9._cast_Long
