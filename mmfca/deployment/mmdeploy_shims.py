# Copyright (c) mmfca contributors. All rights reserved.
"""What MMDeploy 1.3.1 needs from torch >= 2.9, applied only while it
exports.

MMDeploy 1.3.1 (its last release) was written against torch <= 2.1. Two
changes of later torch versions break its ``torch2onnx``; each shim below
undoes one of them, inside :func:`mmdeploy_export_shims` only, and only on
the torch versions that made the change. Nothing is patched when mmfca is
imported; on torch 2.1 (the oldest stack) the context changes nothing.

* ``dynamo_false_by_default`` (torch >= 2.9, pytorch/pytorch#159646
  "[ONNX] Default to dynamo export"): ``torch.onnx.export`` defaults to
  ``dynamo=True``, which needs ``onnxscript`` and captures the graph with
  ``torch.export``, where MMDeploy's rewriters (function, symbolic and
  module rewriters of the TorchScript exporter) never run. MMDeploy calls
  ``torch.onnx.export`` without the argument; the shim makes the default
  ``dynamo=False`` again (an explicit ``dynamo=`` is passed on as is).
* ``cast_long_symbolic`` (torch >= 2.9, pytorch/pytorch#161323 "[ONNX]
  Refactor torchscript based exporter": ``torch.onnx.symbolic_opset9``
  re-exports only its public names; pytorch/pytorch#164641 then removed the
  ``_cast_*`` symbolics): MMDeploy's RoIAlign symbolic
  (``mmdeploy/mmcv/ops/roi_align.py``) imports
  ``torch.onnx.symbolic_opset9._cast_Long``. The shim provides it as the
  one ``Cast`` node to int64 it was.
"""
import contextlib
import functools
import re
from typing import Iterator, List, Optional, Tuple

import torch

#: The torch release from which each shim is applied.
SHIMS = {
    'dynamo_false_by_default': (2, 9),
    'cast_long_symbolic': (2, 9),
}

#: ONNX's TensorProto.INT64.
_ONNX_INT64 = 7


def torch_release(version: Optional[str] = None) -> Tuple[int, ...]:
    """``(2, 14, 1)`` from ``'2.14.1+cu130'`` (default: this torch)."""
    version = torch.__version__ if version is None else version
    numbers = re.match(r'\d+(\.\d+)*', version).group(0)
    return tuple(int(n) for n in numbers.split('.'))


def needed_shims(version: Optional[str] = None) -> List[str]:
    """The shims that torch ``version`` (default: this one) needs."""
    release = torch_release(version)
    return [name for name, since in SHIMS.items() if release >= since]


def _cast_long(g, input, non_blocking):
    """torch <= 2.8's ``symbolic_opset9._cast_Long``: a Cast to int64."""
    return g.op('Cast', input, to_i=_ONNX_INT64)


@contextlib.contextmanager
def mmdeploy_export_shims(version: Optional[str] = None) -> Iterator[list]:
    """Apply the shims this torch needs (:func:`needed_shims`) inside the
    ``with`` block; restore torch as it was when it ends.

    Args:
        version (str, optional): The torch version that decides; this one
            by default (tests pass others).

    Yields:
        list[str]: The names of the shims applied.
    """
    applied, undo = [], []
    try:
        for name in needed_shims(version):
            if name == 'dynamo_false_by_default':
                original = torch.onnx.export

                @functools.wraps(original)
                def export(*args, dynamo=False, **kwargs):
                    return original(*args, dynamo=dynamo, **kwargs)

                torch.onnx.export = export
                undo.append(
                    lambda o=original: setattr(torch.onnx, 'export', o))
            elif name == 'cast_long_symbolic':
                import torch.onnx.symbolic_opset9 as opset9
                if hasattr(opset9, '_cast_Long'):
                    continue
                opset9._cast_Long = _cast_long
                undo.append(lambda m=opset9: delattr(m, '_cast_Long'))
            applied.append(name)
        yield applied
    finally:
        for restore in reversed(undo):
            restore()
