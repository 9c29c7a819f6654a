# Copyright (c) mmfca contributors. All rights reserved.
"""Multi-spectral channel attention (the FCA layer of FcaNet)."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from .dct import FreqSel
from .dct_squeeze import (MultiSpectralDCT, _outer, dct_squeeze,
                          in_graph_capture)


class _FusedFCA(torch.autograd.Function):
    """The whole FCA layer for training with the fixed DCT filter.

    Same math as the module path (squeeze, excitation on the normalised
    squeeze, scale), with a backward that writes the input gradient once:
    ``grad_out * att``, then the squeeze's part added in place. Autograd
    would materialise that part and add it (one more full-size pass); SE's
    pooling gradient is a broadcast view and needs none. The gradient
    through the per-sample normaliser ``s`` is exactly 0, since
    ``s * f(y / s) = f(y)`` for the positively homogeneous excitation
    ``f = fc2 . relu . fc1``.
    """

    @staticmethod
    def forward(ctx, x, w1, w2, rows, cols, scale):
        n, c = x.shape[:2]
        with torch.autocast(x.device.type, enabled=False):
            y = dct_squeeze(x, rows, cols, scale)
            s = y.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
            u = (y / s).to(w1.dtype)
            hidden = torch.relu(u @ w1.t())
            att = torch.sigmoid((hidden @ w2.t()).to(y.dtype) * s)
        ctx.save_for_backward(x, w1, w2, rows, cols, scale, u, hidden, att,
                              s)
        return x * att.to(x.dtype).view(n, c, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x, w1, w2, rows, cols, scale, u, hidden, att, s = ctx.saved_tensors
        n, c, h, w = x.shape
        groups = rows.shape[0]
        wide = att.dtype
        grad_att = (grad_out * x).sum((2, 3)).to(wide)
        grad_z = grad_att * att * (1 - att) * s
        grad_w2 = grad_z.t() @ hidden.to(wide)
        grad_pre = (grad_z @ w2.to(wide)) * (hidden > 0)
        grad_w1 = grad_pre.t() @ u.to(wide)
        grad_y = (grad_pre @ w1.to(wide)) / s
        grad_y = grad_y.view(n, groups, c // groups) * scale.to(wide)
        # contiguous (N, C, H, W) so that the groups can be viewed
        grad_x = grad_out.contiguous() * att.to(grad_out.dtype).view(
            n, c, 1, 1)
        filters = _outer(rows, cols).view(1, groups, 1, h * w).to(
            grad_x.dtype)
        grad_x.view(n, groups, c // groups, h * w).addcmul_(
            grad_y.view(n, groups, c // groups, 1).to(grad_x.dtype), filters)
        return (grad_x, grad_w1.to(w1.dtype), grad_w2.to(w2.dtype), None,
                None, None)


@MODELS.register_module()
class MultiSpectralAttention(BaseModule):
    """Multi-spectral channel attention (FCA) of `FcaNet
    <https://arxiv.org/abs/2012.11879>`_.

    SE's global average pooling is the (0, 0) term of a 2D DCT; FCA splits
    the channels into ``n`` equal groups and squeezes group ``k`` with DCT
    frequency ``k``, then applies SE's excitation:
    ``out = x * sigmoid(fc2(relu(fc1(squeeze(x)))))`` with bias-free FCs.
    Works as an MMDetection ResNet plugin, e.g.
    ``dict(cfg=dict(type='MultiSpectralAttention', dct_h=7, dct_w=7),
    position='after_conv3')``; its modules are named ``att`` as in the
    released checkpoints.

    With autograd on and the fixed DCT filter, the layer runs as one fused
    autograd function (same result, cheaper backward); hooks on its
    ``dct_layer`` and ``fc`` submodules fire on the module path only, i.e.
    without autograd (inference) or with the ablation's filters.

    Args:
        in_channels (int): Number of input channels (the plugin builder
            passes it).
        dct_h (int, optional): Height of the DCT filter; inputs of any
            other height are adaptively average pooled to it first. None
            (with ``dct_w=None``): the filter follows each input's size (see
            :class:`MultiSpectralDCT`). Defaults to 7.
        dct_w (int, optional): Width of the DCT filter. Defaults to 7.
        reduction (int): Squeeze ratio of the first FC. Defaults to 16.
        freq_sel_method (str | list): ``'top16'`` (the published models),
            any of ``top|low|bot`` x ``1,2,4,8,16,32``, or an explicit list
            of (u, v) pairs on the 7x7 grid. Defaults to ``'top16'``.
        learnable_filter (bool): Train the filter (ablation). Defaults to
            False.
        filter_init (str): ``'dct'`` or ``'random'`` (ablation). Defaults
            to ``'dct'``.
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
                 freq_sel_method: FreqSel = 'top16',
                 learnable_filter: bool = False,
                 filter_init: str = 'dct',
                 inplace: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.inplace = inplace
        if not isinstance(reduction, int) or reduction < 1 \
                or in_channels // reduction < 1:
            raise ValueError(
                f'reduction={reduction!r} is not allowed for in_channels='
                f'{in_channels}; it must be an integer in [1, {in_channels}] '
                f'so that the hidden layer keeps at least one unit.')
        self.in_channels = in_channels
        self.freq_sel_method = freq_sel_method
        self.dct_layer = MultiSpectralDCT(
            in_channels, dct_h, dct_w, freq_sel_method,
            learnable=learnable_filter, filter_init=filter_init)
        hidden = in_channels // reduction
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, in_channels, bias=False),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reweight the channels of ``x``.

        Args:
            x (Tensor): Feature map of shape (N, C, H, W), any H and W.

        Returns:
            Tensor: ``x`` scaled per channel, same shape and dtype.
        """
        if x.dim() != 4:
            raise ValueError(
                f'{type(self).__name__} expects a 4D (N, C, H, W) input, got '
                f'a {x.dim()}D tensor of shape {tuple(x.shape)}.')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} was built for in_channels='
                f'{self.in_channels}, got an input with {x.shape[1]} channels '
                f'(shape {tuple(x.shape)}).')
        if self.dct_layer.separable and torch.is_grad_enabled() \
                and not in_graph_capture():
            return self._fused_forward(x)
        y = self.dct_layer(x)
        # The squeeze can exceed the fp16 range (it is GAP * sqrt(H*W) for
        # the DC term). fc2(relu(fc1(y))) is positively homogeneous in y
        # (bias-free), so y is normalised per sample before the FCs and the
        # scale restored in float32 before the sigmoid; the tiny excitation
        # runs outside autocast, in the FCs' own dtype.
        with torch.autocast(x.device.type, enabled=False):
            scale = y.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
            fc1, relu, fc2, sigmoid = self.fc
            z = fc2(relu(fc1((y / scale).to(fc1.weight.dtype))))
            att = sigmoid(z.to(scale.dtype) * scale)
        att = att.to(x.dtype).view(*att.shape, 1, 1)
        if self.inplace and not torch.is_grad_enabled():
            return x.mul_(att)
        return x * att

    def _fused_forward(self, x):
        """Training path of the fixed DCT filter: same result, one fused
        autograd function (see ``_FusedFCA``)."""
        return _FusedFCA.apply(x, self.fc[0].weight, self.fc[2].weight,
                               *self.dct_layer.factors(x))
