# Copyright (c) mmfca contributors. All rights reserved.
"""Whether a forward is being recorded as a graph instead of run.

A module whose Python code depends on its inputs' values (a loop over the
images that have boxes, a size check, a cache keyed by the input size)
runs correctly in eager mode, but a tracer records only the branch and the
loop count of its example input: the graph then computes something else
for other inputs, silently. Such a module asks :func:`in_graph_capture`
and takes a graph-safe path while it is true (see
:class:`mmfca.models.roi_heads.MatmulRoIAlign`).
"""
import torch

__all__ = ['in_graph_capture']


def _dynamo_is_compiling():
    """``torch.compiler.is_compiling`` (torch >= 2.3) or its older name
    ``torch._dynamo.is_compiling`` (torch 2.1, 2.2), chosen here once: the
    function that dynamo recognises must be called directly, not found by
    a ``getattr`` or ``try`` inside the compiled code."""
    compiler = getattr(torch, 'compiler', None)
    is_compiling = getattr(compiler, 'is_compiling', None)
    if is_compiling is None:
        from torch import _dynamo
        is_compiling = _dynamo.is_compiling
    return is_compiling


_is_compiling = _dynamo_is_compiling()


def in_graph_capture() -> bool:
    """Whether the current forward is being recorded as a graph.

    True under

    * TorchScript tracing: ``torch.jit.trace``, the TorchScript ONNX
      exporter (``torch.onnx.export``, the default before torch 2.9 and
      ``dynamo=False`` after; MMDeploy's ``torch2onnx``), jit-based FLOP
      counters;
    * dynamo and ``torch.export`` (strict and non-strict): ``torch.compile``,
      ``torch.export`` and the dynamo ONNX exporter, which captures through
      ``torch.export`` (or, as its fallback, ``torch.jit.trace``).

    ``torch.onnx.is_in_onnx_export()`` adds nothing to these two checks and
    would cost more than both together in every eager call.

    Returns:
        bool: True while a graph is captured; False in eager mode and in
        TorchScript scripting.
    """
    return torch.jit.is_tracing() or _is_compiling()
