# Copyright (c) mmfca contributors. All rights reserved.
"""Multi-spectral channel attention (the FCA layer of FcaNet)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from .cpu_specialisation import (FusedCPUTraining, cpu_specialised,
                                 function_transforms_active, hooked)
from .dct import FreqSel
from .dct_squeeze import (MultiSpectralDCT, in_graph_capture,
                          multi_spectral_squeeze)


@MODELS.register_module()
class MultiSpectralAttention(BaseModule):
    """Multi-spectral channel attention (FCA) of `FcaNet
    <https://arxiv.org/abs/2012.11879>`_.

    SE's global average pooling is the (0, 0) term of a 2D DCT; FCA splits
    the channels into one group per frequency and squeezes group ``k`` with
    DCT frequency ``k``, then applies SE's excitation:
    ``out = x * sigmoid(fc2(relu(fc1(squeeze(x)))))`` with bias-free FCs.
    Works as an MMDetection ResNet plugin, e.g.
    ``dict(cfg=dict(type='MultiSpectralAttention', dct_h=7, dct_w=7),
    position='after_conv3')``; its modules are named ``att`` as in the
    released checkpoints.

    Precision: the squeeze sums in float32 (float64 for float64 inputs) and
    the excitation runs in the FCs' own dtype outside autocast, so under
    AMP the tiny excitation is float32. In a model cast to float16 as a
    whole, the squeeze (up to ``GAP * sqrt(H * W)``) and the gradients
    through the excitation can exceed float16's range, so the excitation
    then runs in float32 on float32 copies of the FC weights (see
    :meth:`excite`); hooks on ``fc`` do not fire there. Hooks on
    ``dct_layer`` and on ``fc`` fire on every other path.

    CPU specialisation: training on float32/float64 NCHW CPU inputs runs
    :class:`FusedCPUTraining`, the same computation with a cheaper backward
    (see :meth:`fused_cpu_training`; skipped while any hook is registered
    on ``dct_layer`` or ``fc``, so hooks see every call).

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
        self.in_channels = in_channels
        self.freq_sel_method = freq_sel_method
        self.inplace = inplace
        self.dct_layer = MultiSpectralDCT(
            in_channels, dct_h, dct_w, freq_sel_method,
            learnable_filter=learnable_filter, filter_init=filter_init)
        if not isinstance(reduction, int) or reduction < 1 \
                or in_channels // reduction < 1:
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
        """Reweight the channels of ``x``.

        Args:
            x (Tensor): Feature map of shape (N, C, H, W), any H and W, any
                memory format (the output keeps it).

        Returns:
            Tensor: ``x`` scaled per channel, same shape and dtype.
        """
        if self.fused_cpu_training(x):
            return self.forward_fused_cpu(x)
        y = self.dct_layer(x)  # multi-spectral squeeze: (N, C)
        att = self.excite(y)
        att = att.view(*att.shape, 1, 1)
        if att.dtype != x.dtype:
            att = att.to(x.dtype)
        if self.inplace and not torch.is_grad_enabled():
            return x.mul_(att)
        return x * att

    def excite(self, y: torch.Tensor) -> torch.Tensor:
        """SE's excitation ``sigmoid(fc2(relu(fc1(y))))`` of the squeeze
        ``y`` (N, C), outside autocast, in the FCs' dtype; for float16 FCs
        in float32 on float32 copies of their weights (the squeeze and the
        gradients that flow through the excitation exceed float16's
        range)."""
        weight = self.fc[0].weight
        if weight.dtype == torch.float16:
            with autocast_off(y.device.type):
                hidden = F.relu(F.linear(y, weight.float()))
                return torch.sigmoid(
                    F.linear(hidden, self.fc[2].weight.float()))
        if y.dtype != weight.dtype:
            y = y.to(weight.dtype)
        if not autocast_enabled(y.device.type):
            return self.fc(y)
        with autocast_off(y.device.type):
            return self.fc(y)

    # --- the CPU specialisation of training (cpu_specialisation.py) -------

    def fused_cpu_training(self, x: torch.Tensor) -> bool:
        """Whether :meth:`forward` runs :class:`FusedCPUTraining`: autograd
        on, a float32/float64 NCHW CPU input (:func:`cpu_specialised`), the
        fixed DCT filter, FCs of the input's dtype, no autocast, no graph
        capture, no ``torch.func`` transform or forward-mode AD, and no
        hook on ``dct_layer``, ``fc`` or their children (so that hooks see
        the same calls on every path)."""
        return (torch.is_grad_enabled() and cpu_specialised(x)
                and self.dct_layer.fixed_dct
                and self.fc[0].weight.dtype == x.dtype
                and not autocast_enabled('cpu') and not in_graph_capture()
                and not function_transforms_active()
                and not hooked(self.dct_layer, *self.fc.modules()))

    def forward_fused_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` as one autograd function (see
        :class:`FusedCPUTraining`)."""
        self.dct_layer.check_input(x)
        filters = self.dct_layer.filters(x)
        with torch.no_grad():  # the 'chunked' squeeze; its gradient is fused
            y = multi_spectral_squeeze(x, filters, 'chunked')
        return FusedCPUTraining.apply(x, filters, y, self.fc[0].weight,
                                      self.fc[2].weight)


def _autocast_enabled_by_type(device_type: str) -> bool:
    return torch.is_autocast_enabled(device_type)


def _autocast_enabled_before_2_4(device_type: str) -> bool:
    if device_type == 'cpu':
        return torch.is_autocast_cpu_enabled()
    return torch.is_autocast_enabled()


def _takes_device_type() -> bool:
    try:
        torch.is_autocast_enabled('cpu')
    except TypeError:  # torch < 2.4
        return False
    return True


#: Whether autocast is on for a device type (chosen once: torch.compile
#: cannot trace a TypeError raised and caught at call time).
autocast_enabled = (_autocast_enabled_by_type if _takes_device_type() else
                    _autocast_enabled_before_2_4)


def autocast_off(device_type: str):
    """A context that disables autocast for ``device_type``."""
    return torch.autocast(device_type, enabled=False)
