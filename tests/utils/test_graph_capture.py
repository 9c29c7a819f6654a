# Copyright (c) mmfca contributors. All rights reserved.
"""mmfca.utils.in_graph_capture: false in eager mode, true while
torch.jit.trace, the TorchScript ONNX exporter, torch.compile and
torch.export record a forward."""
import inspect

import pytest
import torch
import torch.nn as nn

from mmfca.utils import in_graph_capture


class _Branch(nn.Module):
    """``x + 1`` while a graph is captured, ``x - 1`` otherwise; with
    ``record``, every answer of :func:`in_graph_capture` is kept in
    ``seen`` (a Python side effect, for the tracers that run the Python)."""

    def __init__(self, record=False):
        super().__init__()
        self.seen = [] if record else None

    def forward(self, x):
        capture = in_graph_capture()
        if self.seen is not None:
            self.seen.append(capture)
        return x + 1 if capture else x - 1


def test_eager():
    x = torch.zeros(3)
    assert not in_graph_capture()
    assert torch.equal(_Branch()(x), x - 1)


def test_jit_trace():
    x = torch.zeros(3)
    module = _Branch(record=True)
    traced = torch.jit.trace(module, x, check_trace=False)
    assert module.seen == [True]
    assert torch.equal(traced(x), x + 1)
    assert not in_graph_capture()  # after the trace


def test_torchscript_onnx_export(tmp_path):
    pytest.importorskip('onnx', reason='the deploy extra (onnx, '
                        'onnxruntime) is part of the test set-up')
    module = _Branch(record=True)
    kwargs = {}
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    torch.onnx.export(module, (torch.zeros(3), ), str(tmp_path / 'm.onnx'),
                      opset_version=11, **kwargs)
    assert module.seen and all(module.seen)
    assert not in_graph_capture()


def test_torch_compile():
    x = torch.zeros(3)
    compiled = torch.compile(_Branch(), backend='eager', fullgraph=True)
    assert torch.equal(compiled(x), x + 1)
    assert not in_graph_capture()


@pytest.mark.skipif(not hasattr(torch, 'export'),
                    reason='torch.export is new in torch 2.1')
def test_torch_export():
    x = torch.zeros(3)
    exported = torch.export.export(_Branch(), (x, ))
    # torch 2.1's ExportedProgram is called; later ones give a module
    run = exported.module() if hasattr(exported, 'module') else exported
    assert torch.equal(run(x), x + 1)


@pytest.mark.skipif(
    not hasattr(torch, 'export')
    or 'strict' not in inspect.signature(torch.export.export).parameters,
    reason='non-strict torch.export is new in torch 2.3')
def test_non_strict_torch_export():
    """What the dynamo ONNX exporter runs first (torch >= 2.5): the module's
    Python runs under the export's own tracer, not dynamo; the graph holds
    the capture branch."""
    x = torch.zeros(3)
    exported = torch.export.export(_Branch(), (x, ), strict=False)
    assert torch.equal(exported.module()(x), x + 1)
    assert not in_graph_capture()
