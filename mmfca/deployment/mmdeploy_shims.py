# Copyright (c) mmfca contributors. All rights reserved.
"""What MMDeploy 1.3.1 (written for torch <= 2.1) needs from torch >= 2.9,
only inside :func:`mmdeploy_export_shims`, on those versions only:

* ``dynamo_false_by_default``: torch >= 2.9 exports with ``dynamo=True``
  (pytorch/pytorch#159646), where MMDeploy's rewriters never run; the
  default is ``False`` again (an explicit one is kept).
* ``cast_long_symbolic``: MMDeploy's RoIAlign symbolic imports
  ``symbolic_opset9._cast_Long``, dropped by torch 2.9
  (pytorch/pytorch#161323, #164641).
"""
import contextlib
import functools
from typing import Iterator, List, Optional

import torch
from mmengine.utils import digit_version

#: The shims, applied from torch :data:`SINCE` on (its pre-releases too).
SHIMS, SINCE = ('dynamo_false_by_default', 'cast_long_symbolic'), (2, 9)


def needed_shims(version: Optional[str] = None) -> List[str]:
    """The shims that torch ``version`` (default: this one) needs."""
    release = digit_version(version or torch.__version__)[:len(SINCE)]
    return list(SHIMS) if release >= SINCE else []


def _cast_long(g, input, non_blocking):
    """torch <= 2.8's ``symbolic_opset9._cast_Long``: a Cast to int64."""
    return g.op('Cast', input, to_i=7)  # ONNX's TensorProto.INT64


@contextlib.contextmanager
def mmdeploy_export_shims(version: Optional[str] = None) -> Iterator[list]:
    """The shims torch ``version`` (default: this one) needs, applied inside
    the ``with`` block (their names yielded), torch restored after it."""
    import torch.onnx.symbolic_opset9 as opset9
    export, applied = torch.onnx.export, needed_shims(version)
    if hasattr(opset9, '_cast_Long') and 'cast_long_symbolic' in applied:
        applied.remove('cast_long_symbolic')  # this torch still has it
    try:
        if 'dynamo_false_by_default' in applied:
            torch.onnx.export = functools.wraps(export)(
                lambda *args, dynamo=False, **kwargs: export(
                    *args, dynamo=dynamo, **kwargs))
        if 'cast_long_symbolic' in applied:
            opset9._cast_Long = _cast_long
        yield applied
    finally:
        torch.onnx.export = export
        if 'cast_long_symbolic' in applied:
            del opset9._cast_Long
