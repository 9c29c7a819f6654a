# Copyright (c) mmfca contributors. All rights reserved.
"""RoIAlign as a matrix product, for training detectors on a CPU.

RoIAlign (``aligned=True``, a fixed ``sampling_ratio`` s) averages, in each
of the ``ph x pw`` bins of a RoI, ``s x s`` bilinear samples of the feature
map. Every output value is therefore a fixed linear combination of feature
pixels: for one image, ``out = M @ F`` with ``F`` the ``(H*W, C)`` feature
map and ``M`` a ``(K*ph*pw, H*W)`` matrix holding, per output bin, the
bilinear weights of its samples divided by ``s*s`` (at most ``4*s*s``
non-zeros a row). ``M`` depends on the boxes only, so the backward pass is
``M.T @ dOut``: two dense multiplications that use every core.

What it saves: mmcv's CPU RoIAlign runs its backward on one thread, looping
over every output element: a large share of a small detector's CPU
iteration, growing with the number of sampled RoIs (benchmarks/RESULTS.md,
"RoIAlign"). The matrix is dense, so it is used only while it is small
(``max_matrix_elements``); larger maps, GPU tensors and the cases it does
not cover (adaptive sampling, max pooling, ``aligned=False``) run mmcv's op.

Graph capture (deployment): the matrix is built by Python code that
depends on the boxes (which images have RoIs, how many, the size check),
so a tracer would record the example's structure and the ONNX graph would
compute something else for other boxes (the TorchScript exporter turned
it into a graph that onnxruntime refuses at opset 11 and that runs, wrong,
at opset 16). While a graph is captured
(:func:`mmfca.utils.in_graph_capture`: ``torch.jit.trace``,
``torch.onnx.export``, MMDeploy's ``torch2onnx``, ``torch.compile``,
``torch.export``) the layer therefore runs mmcv's op, which the exporters
know (mmcv's ONNX symbolic, MMDeploy's rewrite): the graph is the one
:class:`SingleRoIExtractor` gives, for any boxes. (mmcv's own symbolic,
met by a plain ``torch.onnx.export``, writes opset 10's ``RoiAlign`` and
needs an ``opset_version`` below 13; MMDeploy brings its own.)
"""
from typing import Tuple

import torch
from mmcv.ops import RoIAlign
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

from mmfca.utils.graph_capture import in_graph_capture


def _axis_weights(start: Tensor, end: Tensor, bins: int, samples: int,
                  size: int) -> Tuple[Tensor, ...]:
    """Bilinear neighbours and weights of the samples along one axis.

    Each RoI's ``[start, end]`` is cut into ``bins`` bins of ``samples``
    evenly spaced samples; as in mmcv's ``bilinear_interpolate``, a sample
    outside ``[-1, size]`` contributes nothing and one inside is clamped to
    ``[0, size - 1]``.

    Args:
        start (Tensor): ``(K, )`` RoI starts in feature pixels.
        end (Tensor): ``(K, )`` RoI ends in feature pixels.
        bins (int): Bins along this axis.
        samples (int): Samples per bin along this axis.
        size (int): The feature map's length along this axis.

    Returns:
        tuple[Tensor]: ``(low index, high index, low weight, high weight)``,
        each ``(K, bins, samples)``.
    """
    offsets = torch.arange(bins, dtype=start.dtype, device=start.device)
    offsets = offsets[:, None] + (torch.arange(
        samples, dtype=start.dtype, device=start.device) + 0.5) / samples
    coords = start[:, None, None] + ((end - start) / bins)[:, None, None] * \
        offsets
    inside = ((coords >= -1) & (coords <= size)).to(coords.dtype)
    coords = coords.clamp(min=0)
    low = coords.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    frac = torch.where(low >= size - 1, torch.zeros_like(coords),
                       coords - low.to(coords.dtype))
    return low, high, (1 - frac) * inside, frac * inside


def roi_align_matrix(rois: Tensor, output_size: Tuple[int, int],
                     spatial_scale: float, sampling_ratio: int, height: int,
                     width: int) -> Tensor:
    """The ``(K*ph*pw, height*width)`` matrix of RoIAlign on one image.

    Args:
        rois (Tensor): ``(K, 4)`` boxes ``x1, y1, x2, y2`` in image pixels.
        output_size (tuple[int]): ``(ph, pw)`` bins per RoI.
        spatial_scale (float): Feature pixels per image pixel.
        sampling_ratio (int): Samples per bin along each axis (> 0).
        height (int): Feature map height.
        width (int): Feature map width.

    Returns:
        Tensor: Row ``(k*ph + i)*pw + j`` holds the weights that make bin
        ``(i, j)`` of RoI ``k`` from the flattened feature map.
    """
    ph, pw = output_size
    s = sampling_ratio
    num = rois.size(0)
    # aligned=True: pixel centres at integer coordinates after the shift
    x1, y1, x2, y2 = (rois * spatial_scale - 0.5).unbind(1)
    x_lo, x_hi, wx_lo, wx_hi = _axis_weights(x1, x2, pw, s, width)
    y_lo, y_hi, wy_lo, wy_hi = _axis_weights(y1, y2, ph, s, height)
    # the four corners of every sample, laid out (4, K, ph, s, pw, s)
    cols, weights = [], []
    for y_idx, wy in ((y_lo, wy_lo), (y_hi, wy_hi)):
        for x_idx, wx in ((x_lo, wx_lo), (x_hi, wx_hi)):
            cols.append(y_idx[:, :, :, None, None] * width +
                        x_idx[:, None, None, :, :])
            weights.append(wy[:, :, :, None, None] * wx[:, None, None, :, :])
    cols = torch.stack(cols)
    weights = torch.stack(weights) / (s * s)
    rows = torch.arange(num * ph * pw, device=rois.device).view(
        1, num, ph, 1, pw, 1).expand_as(cols)
    matrix = rois.new_zeros(num * ph * pw, height * width)
    matrix.index_put_((rows.reshape(-1), cols.reshape(-1)),
                      weights.reshape(-1), accumulate=True)
    return matrix


class MatmulRoIAlign(RoIAlign):
    """mmcv's :class:`~mmcv.ops.RoIAlign`, computed as a matrix product.

    Same arguments and results as mmcv's op (forward and gradient, to
    float round-off); the matrix form is used for CPU tensors with
    ``aligned=True``, ``pool_mode='avg'`` and ``sampling_ratio > 0``, while
    one image's matrix has at most ``max_matrix_elements`` entries.
    Anything else runs mmcv's op, and so does every call while a graph is
    captured (:func:`~mmfca.utils.in_graph_capture`: tracing, ONNX export,
    ``torch.compile``), whose graph must not freeze the example boxes'
    structure.

    Args:
        output_size (int | tuple[int]): ``(ph, pw)`` bins per RoI.
        spatial_scale (float): Feature pixels per image pixel.
        sampling_ratio (int): Samples per bin along each axis; 0 (mmcv's
            adaptive count) runs mmcv's op. Defaults to 0.
        pool_mode (str): ``'avg'`` or ``'max'`` (mmcv's op). Defaults to
            ``'avg'``.
        aligned (bool): Half-pixel alignment. Defaults to True.
        use_torchvision (bool): Passed to mmcv's op. Defaults to False.
        max_matrix_elements (int): The largest ``K*ph*pw*H*W`` computed as a
            dense matrix (per image); 2**24 = 64 MiB of float32.
    """

    def __init__(self, *args, max_matrix_elements: int = 2**24, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_matrix_elements = max_matrix_elements

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """Pool ``(K, C, ph, pw)`` features of ``rois`` (``(K, 5)``: image
        index, x1, y1, x2, y2) from ``input`` (``(N, C, H, W)``)."""
        n, c, h, w = input.shape
        ph, pw = self.output_size
        if (in_graph_capture() or input.is_cuda or not self.aligned
                or self.pool_mode != 'avg' or self.sampling_ratio <= 0
                or rois.numel() == 0):
            return super().forward(input, rois)
        image_ids = rois[:, 0].long()
        per_image = torch.bincount(image_ids, minlength=n)
        if int(per_image.max()) * ph * pw * h * w > self.max_matrix_elements:
            return super().forward(input, rois)
        # (N, H*W, C): each image's pixels as rows
        pixels = input.flatten(2).transpose(1, 2)
        out = input.new_empty(rois.size(0), ph * pw, c)
        for i in per_image.nonzero()[:, 0].tolist():
            index = (image_ids == i).nonzero()[:, 0]
            matrix = roi_align_matrix(rois[index, 1:].to(input.dtype),
                                      (ph, pw), self.spatial_scale,
                                      self.sampling_ratio, h, w)
            out[index] = (matrix @ pixels[i]).view(-1, ph * pw, c)
        return out.transpose(1, 2).reshape(-1, c, ph, pw)

    def __repr__(self):
        return (super().__repr__()[:-1] +
                f', max_matrix_elements={self.max_matrix_elements})')


@MODELS.register_module()
class MatmulRoIExtractor(SingleRoIExtractor):
    """MMDetection's :class:`SingleRoIExtractor` with a
    ``roi_layer=dict(type='RoIAlign', ...)`` run as :class:`MatmulRoIAlign`.

    Every argument is :class:`SingleRoIExtractor`'s; the RoI layer's
    arguments are mmcv's ``RoIAlign``'s (plus ``max_matrix_elements``), so a
    config switches by changing only the extractor's ``type``. Other RoI
    layer types are built as MMDetection builds them.
    """

    def build_roi_layers(self, layer_cfg, featmap_strides):
        """Build one RoI layer per feature level (see the base class)."""
        if layer_cfg.get('type') == 'RoIAlign':
            layer_cfg = dict(layer_cfg, type=MatmulRoIAlign)
        return super().build_roi_layers(layer_cfg, featmap_strides)
