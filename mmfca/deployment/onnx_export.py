# Copyright (c) mmfca contributors. All rights reserved.
"""ONNX export of FcaNet models, checked with onnxruntime.

The FCA layer exports with standard ONNX operators only: while the model
is traced, its squeeze computes the pooled DCT filters from the input's
shape (:meth:`~mmfca.models.layers.dct_squeeze.MultiSpectralDCT.
graph_squeeze`), so one graph serves every input height and width.

Parts that can be exported (``part``):

* ``'backbone'``: the backbone's feature maps;
* ``'features'``: a detector's or segmentor's ``extract_feat`` (backbone and
  neck: FPN levels);
* ``'tensor'``: the whole model's ``mode='tensor'`` forward where
  MMDetection allows it without data samples and NMS (single-stage
  detectors: class scores and box deltas per level; classifiers: logits).
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

PARTS = ('backbone', 'features', 'tensor')


class _Part(nn.Module):
    """A tensor-in, tensors-out view of one part of a model."""

    def __init__(self, model, part):
        super().__init__()
        self.model, self.part = model, part

    def forward(self, img):
        if self.part == 'backbone':
            out = self.model.backbone(img)
        elif self.part == 'features':
            out = self.model.extract_feat(img)
        else:
            out = self.model(img, mode='tensor')
        return tuple(_flatten(out))


def _flatten(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in out for t in _flatten(item)]


def exportable(model: nn.Module, part: str) -> nn.Module:
    """Wrap ``part`` of ``model`` as a module of one image tensor.

    Args:
        model (nn.Module): An OpenMMLab model (detector, classifier,
            segmentor) in eval mode.
        part (str): One of :data:`PARTS`.

    Returns:
        nn.Module: ``img (N, 3, H, W) -> tuple of tensors``.

    Raises:
        ValueError: If ``part`` is unknown or the model cannot run it
            without data samples (e.g. ``'tensor'`` for two-stage
            detectors, whose RPN needs image metas and NMS).
    """
    if part not in PARTS:
        raise ValueError(f'Unknown part {part!r}; allowed: {PARTS}.')
    if part == 'features' and not hasattr(model, 'extract_feat'):
        raise ValueError(f'{type(model).__name__} has no extract_feat; '
                         f'export part="backbone" instead.')
    if part == 'tensor' and hasattr(model, 'rpn_head'):
        raise ValueError(
            f'{type(model).__name__} is a two-stage detector: its tensor '
            f'forward needs image metas and runs NMS on the proposals. '
            f'Deploy the whole detector with tools/deployment/deploy.py '
            f'(MMDeploy, standard ONNX operators), or export '
            f'part="features" (backbone + neck).')
    return _Part(model, part).eval()


def export_onnx(module: nn.Module, example: torch.Tensor, path: str,
                opset: int = 17) -> List[str]:
    """Export ``module`` with dynamic batch, height and width.

    Args:
        module (nn.Module): From :func:`exportable`.
        example (Tensor): An example input (N, 3, H, W).
        path (str): The ``.onnx`` file to write.
        opset (int): ONNX opset. Defaults to 17.

    Returns:
        list[str]: The output names.
    """
    with torch.no_grad():
        num_outputs = len(module(example))
    outputs = [f'out{i}' for i in range(num_outputs)]
    dynamic = {'img': {0: 'batch', 2: 'height', 3: 'width'}}
    dynamic.update({name: {0: 'batch'} for name in outputs})
    kwargs = dict(input_names=['img'], output_names=outputs,
                  dynamic_axes=dynamic, opset_version=opset)
    # the TorchScript exporter traces the model (the default from torch 2.9
    # is the dynamo exporter; torch 2.1 has no such argument)
    import inspect
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    tmp = path + '.part'
    with torch.no_grad():
        torch.onnx.export(module, (example, ), tmp, **kwargs)
    os.replace(tmp, path)
    return outputs


def onnx_domains(path: str) -> set:
    """The operator domains the graph uses (``''`` is standard ONNX)."""
    import onnx
    graph = onnx.load(path).graph
    return {node.domain for node in graph.node}


def check_onnx(path: str, module: nn.Module,
               shapes: Sequence[Tuple[int, int, int, int]],
               seed: int = 0) -> List[dict]:
    """Run the exported graph with onnxruntime and PyTorch on random inputs
    of each shape; report the largest relative error per shape.

    Args:
        path (str): The exported ``.onnx`` file.
        module (nn.Module): The module that was exported.
        shapes (Sequence[tuple]): Input shapes (N, 3, H, W).
        seed (int): Seed of the random inputs.

    Returns:
        list[dict]: ``shape``, ``max_rel_error`` (max over outputs of
        ``max|ort - torch| / max|torch|``) and ``output_shapes``.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(seed)
    report = []
    for shape in shapes:
        img = torch.randn(*shape, generator=gen)
        with torch.no_grad():
            ref = [t.numpy() for t in module(img)]
        got = session.run(None, {'img': img.numpy()})
        if [g.shape for g in got] != [r.shape for r in ref]:
            raise AssertionError(
                f'ONNX output shapes {[g.shape for g in got]} differ from '
                f'PyTorch\'s {[r.shape for r in ref]} at input {shape}.')
        err = max(
            float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-12))
            for g, r in zip(got, ref))
        report.append(dict(shape=tuple(shape), max_rel_error=err,
                           output_shapes=[tuple(r.shape) for r in ref]))
    return report


def output_path(config: str, part: str, out: str = None) -> str:
    """``out``, or ``work_dirs/onnx/<config name>_<part>.onnx``."""
    if out:
        return out
    name = osp.splitext(osp.basename(config))[0]
    return osp.join('work_dirs', 'onnx', f'{name}_{part}.onnx')
