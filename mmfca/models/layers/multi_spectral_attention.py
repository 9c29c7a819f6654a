# Copyright (c) mmfca contributors. All rights reserved.
"""Multi-spectral channel attention (the FCA layer of FcaNet)."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from mmfca.utils.amp import autocast_enabled
from .dct import FreqSelMethod
from .dct_squeeze import AblationSqueeze, MultiSpectralSqueeze


@MODELS.register_module()
class MultiSpectralAttention(BaseModule):
    """Multi-spectral channel attention (FCA) of `FcaNet
    <https://arxiv.org/abs/2012.11879>`_.

    SE's global average pooling is the (0, 0) term of a 2D DCT; FCA splits
    the channels into one group per frequency and squeezes group ``k`` with
    DCT frequency ``k`` (``dct_layer``, :class:`MultiSpectralSqueeze`), then
    applies SE's excitation with bias-free FCs:
    ``out = x * sigmoid(fc2(relu(fc1(squeeze(x)))))``. Works as an
    MMDetection ResNet plugin, e.g.
    ``dict(cfg=dict(type='MultiSpectralAttention', dct_h=7, dct_w=7),
    position='after_conv3')``; its modules are named ``att``, ``fc.0``,
    ``fc.2`` and ``dct_layer`` as in the released checkpoints.

    Precision: the squeeze sums in float32 (float64 for float64 inputs) and
    under autocast the excitation runs in float32 outside it: the squeeze
    (up to ``GAP * sqrt(H * W)``) and the gradients through the excitation
    can exceed float16's range (see :meth:`excite`).

    Every submodule runs as a module on every path (eager, traced,
    compiled), so hooks, adapters that wrap ``fc.0``/``fc.2`` and
    ``torch.ao.quantization.quantize_dynamic`` act on them, and mmengine's
    complexity analysis (MMDetection's and MMPretrain's ``get_flops.py``)
    counts every FC.

    Args:
        in_channels (int): Number of input channels (the plugin builder
            passes it).
        dct_h (int, optional): Height of the DCT filter; inputs of any
            other height are adaptively average pooled to it first. None
            (with ``dct_w=None``): the filter follows each input's size (see
            :class:`MultiSpectralSqueeze`). Defaults to 7.
        dct_w (int, optional): Width of the DCT filter. Defaults to 7.
        reduction (int): Squeeze ratio of the first FC. Defaults to 16.
        freq_sel_method (str | list): ``'top16'`` (the published models),
            any of ``top|low|bot`` x ``1,2,4,8,16,32``, or an explicit list
            of (u, v) pairs on the 7x7 grid. Defaults to ``'top16'``.
        learnable_filter (bool): Train the filters (the authors' ablation:
            ``dct_layer`` is then an :class:`AblationSqueeze`). Defaults to
            False.
        filter_init (str): ``'dct'``, or ``'random'`` (the ablation, an
            :class:`AblationSqueeze`). Defaults to ``'dct'``.
        inplace (bool): When autograd is off (inference), scale the input
            in place instead of allocating the output. Only for callers that
            do not reuse the input (FcaNet's blocks). Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """
    _abbr_ = 'att'

    def __init__(self,
                 in_channels: int,
                 dct_h: Optional[int] = 7,
                 dct_w: Optional[int] = 7,
                 reduction: int = 16,
                 freq_sel_method: FreqSelMethod = 'top16',
                 learnable_filter: bool = False,
                 filter_init: str = 'dct',
                 inplace: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.in_channels, self.inplace = in_channels, inplace
        self.freq_sel_method = freq_sel_method
        if learnable_filter or filter_init != 'dct':
            self.dct_layer = AblationSqueeze(
                in_channels, dct_h, dct_w, freq_sel_method,
                learnable_filter=learnable_filter, filter_init=filter_init)
        else:
            self.dct_layer = MultiSpectralSqueeze(in_channels, dct_h, dct_w,
                                                  freq_sel_method)
        if type(reduction) is not int or not 1 <= reduction <= in_channels:
            raise ValueError(
                f'reduction={reduction!r} is not allowed for in_channels='
                f'{in_channels}; it must be an integer in [1, {in_channels}] '
                f'so that the hidden layer keeps at least one unit.')
        hidden = in_channels // reduction
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, in_channels, bias=False),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * excite(squeeze(x))``: ``x`` (N, C, H, W), any H and W, any
        memory format; the output keeps ``x``'s shape, dtype and format."""
        att = self.excite(self.dct_layer(x))
        att = att.view(x.shape[0], self.in_channels, 1, 1).to(x.dtype)
        if self.inplace and not torch.is_grad_enabled():
            return x.mul_(att)
        return x * att

    def excite(self, y: torch.Tensor) -> torch.Tensor:
        """SE's excitation ``fc(y) = sigmoid(fc2(relu(fc1(y))))`` of the
        squeeze ``y`` (N, C), outside autocast, in the dtype of ``fc``'s
        parameters (float32 under AMP; a model cast to float16 runs its
        FCs in float16 on ``y`` saturated to float16's range, where the
        orthonormal squeeze of a large map can exceed it)."""
        fc1 = self.fc[0]  # a wrapped or quantised FC: its first parameter
        dtype = (fc1.weight if type(fc1) is nn.Linear else next(
            self.fc.parameters(), y)).dtype  # none (int8 Linears): y's
        if dtype != y.dtype:
            if dtype == torch.float16:
                y = y.clamp(-65504, 65504)
            y = y.to(dtype)
        if autocast_enabled(y.device.type):  # AMP: the FCs as they are
            with torch.autocast(y.device.type, enabled=False):
                return self.fc(y)
        return self.fc(y)
