# Copyright (c) mmfca contributors. All rights reserved.
"""Two channel attentions that OpenMMLab does not ship, each with the
squeeze switch of :mod:`.squeeze_switch` as an argument: ECA-Net's and the
channel branch of CBAM. Both work as MMDetection ResNet plugins
(``plugins=[dict(cfg=dict(type='ECALayer'), position='after_conv3')]``).
"""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from .squeeze_switch import build_squeeze


@MODELS.register_module()
class ECALayer(BaseModule):
    """Efficient channel attention of `ECA-Net
    <https://arxiv.org/abs/1910.03151>`_: squeeze, a 1D convolution across
    neighbouring channels (no reduction), sigmoid, scale.

    The kernel size follows the paper's rule
    ``k = odd(|log2(C) + b| / gamma)`` unless given.

    Args:
        in_channels (int): The input (and output) channels.
        kernel_size (int, optional): Odd kernel size of the 1D convolution.
            Defaults to None (the adaptive rule).
        gamma (int): Of the adaptive rule. Defaults to 2.
        b (int): Of the adaptive rule. Defaults to 1.
        squeeze (dict, optional): None for GAP (ECA-Net); a dict for the
            multi-spectral squeeze (see
            :func:`~mmfca.models.layers.squeeze_switch.build_squeeze`).
            Defaults to None.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """
    _abbr_ = 'eca'

    def __init__(self,
                 in_channels: int,
                 kernel_size: Optional[int] = None,
                 gamma: int = 2,
                 b: int = 1,
                 squeeze: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if kernel_size is None:
            t = int(abs((math.log2(in_channels) + b) / gamma))
            kernel_size = t if t % 2 else t + 1
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size={kernel_size} is not allowed; it '
                             f'must be a positive odd integer.')
        self.in_channels = in_channels
        self.global_avgpool = build_squeeze(in_channels, squeeze)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2,
                              bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * sigmoid(conv1d(squeeze(x)))`` over the channel axis."""
        n, c = x.shape[:2]
        y = self.global_avgpool(x).view(n, 1, c).to(self.conv.weight.dtype)
        att = torch.sigmoid(self.conv(y)).view(n, c, 1, 1)
        return x * att.to(x.dtype)


@MODELS.register_module()
class CBAMChannelAttention(BaseModule):
    """The channel attention branch of `CBAM
    <https://arxiv.org/abs/1807.06521>`_: average- and max-pooled
    descriptors through one shared MLP, summed, sigmoid, scale.

    The switch replaces the average pooling (the GAP branch); the max
    pooling stays.

    Args:
        in_channels (int): The input (and output) channels.
        reduction (int): Hidden width ``in_channels // reduction`` of the
            MLP. Defaults to 16.
        squeeze (dict, optional): None for GAP (CBAM); a dict for the
            multi-spectral squeeze (see
            :func:`~mmfca.models.layers.squeeze_switch.build_squeeze`).
            Defaults to None.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """
    _abbr_ = 'cbam_channel'

    def __init__(self,
                 in_channels: int,
                 reduction: int = 16,
                 squeeze: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if in_channels // reduction < 1:
            raise ValueError(f'reduction={reduction} leaves no hidden unit '
                             f'for in_channels={in_channels}.')
        self.in_channels = in_channels
        self.global_avgpool = build_squeeze(in_channels, squeeze)
        self.global_maxpool = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, in_channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels // reduction, in_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * sigmoid(mlp(avg(x)) + mlp(max(x)))``."""
        dtype = self.mlp[0].weight.dtype
        avg = self.mlp(self.global_avgpool(x).to(dtype))
        mx = self.mlp(self.global_maxpool(x).to(dtype))
        return x * torch.sigmoid(avg + mx).to(x.dtype)
