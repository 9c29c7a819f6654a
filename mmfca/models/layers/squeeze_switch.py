# Copyright (c) mmfca contributors. All rights reserved.
"""The paper's "one line of code": the multi-spectral squeeze in channel
attentions that squeeze with global average pooling (GAP).

Every attention here keeps its library's code and weights; only its GAP
module, ``global_avgpool = nn.AdaptiveAvgPool2d(1)``, is replaced by a
:class:`~mmfca.models.layers.dct_squeeze.MultiSpectralSqueeze` with
``keepdim=True``, so parameters are unchanged and FLOPs too (the squeeze
is one multiply-add per input element, GAP one add).

Defaults of the switch (:data:`DEFAULT_SQUEEZE`): ``top16`` frequencies,
a filter that follows the size of the map the module sees (FcaNet's
56/28/14/7 on a 224x224 network), and ``normalization='mean'``, whose
(0, 0) term is exactly GAP, so that a module trained with GAP keeps its
meaning (``freq_sel_method='top1'`` reproduces it exactly). FcaNet's own
layer (:class:`MultiSpectralAttention`) keeps the release's ``'ortho'``.
"""
import copy
from typing import Optional

import torch.nn as nn
from mmdet.models.layers import ChannelAttention
from mmengine.registry import MODELS
from mmpretrain.models.utils import SELayer

#: The squeeze the switch builds unless told otherwise.
DEFAULT_SQUEEZE = dict(
    type='MultiSpectralSqueeze',
    freq_sel_method='top16',
    dct_h=None,
    dct_w=None,
    normalization='mean')


def build_squeeze(in_channels: int, squeeze: Optional[dict]) -> nn.Module:
    """The squeeze of a channel attention: GAP or multi-spectral.

    Args:
        in_channels (int): Channels of the feature the module squeezes.
        squeeze (dict, optional): None for GAP (``nn.AdaptiveAvgPool2d(1)``,
            the original module); otherwise overrides of
            :data:`DEFAULT_SQUEEZE` (``freq_sel_method``, ``dct_h``,
            ``dct_w``, ``normalization``, ...), e.g. ``dict()`` for the
            defaults or ``dict(dct_h=7, dct_w=7)`` for FcaNet's pooled
            7x7 filter.

    Returns:
        nn.Module: Maps (N, C, H, W) to (N, C, 1, 1).
    """
    if squeeze is None:
        return nn.AdaptiveAvgPool2d(1)
    cfg = copy.deepcopy(DEFAULT_SQUEEZE)
    cfg.update(squeeze)
    cfg.update(in_channels=in_channels, keepdim=True)
    return MODELS.build(cfg)


def use_multi_spectral_squeeze(model: nn.Module, squeeze: dict) -> int:
    """Replace the GAP of every MMPretrain ``SELayer`` and MMDetection
    ``ChannelAttention`` inside ``model`` by the multi-spectral squeeze.

    Args:
        model (nn.Module): Any model, e.g. an ``SEResNet``.
        squeeze (dict): As for :func:`build_squeeze`.

    Returns:
        int: How many modules were switched.
    """
    switched = 0
    for module in model.modules():
        if isinstance(module, SELayer):
            channels = module.conv1.conv.in_channels
        elif isinstance(module, ChannelAttention):
            channels = module.fc.in_channels
        else:
            continue
        module.global_avgpool = build_squeeze(channels, squeeze)
        switched += 1
    return switched


@MODELS.register_module()
class MultiSpectralSELayer(SELayer):
    """MMPretrain's ``SELayer`` (the SE of ``SEResNet``, ``SEResNeXt``,
    MobileNetV3, EfficientNet, ...) with the multi-spectral squeeze.

    Args:
        channels (int): The input (and output) channels.
        *args: Positional arguments of MMPretrain's ``SELayer``.
        squeeze (dict, optional): Overrides of :data:`DEFAULT_SQUEEZE` (see
            :func:`build_squeeze`). Defaults to None: the defaults. (For
            GAP, use the parent class.)
        **kwargs: Keyword arguments of MMPretrain's ``SELayer``
            (``squeeze_channels``, ``ratio``, ``divisor``, ``bias``,
            ``conv_cfg``, ``act_cfg``, ``return_weight``, ``init_cfg``).
    """

    def __init__(self, channels, *args, squeeze: Optional[dict] = None,
                 **kwargs):
        super().__init__(channels, *args, **kwargs)
        self.global_avgpool = build_squeeze(
            channels, dict() if squeeze is None else squeeze)


@MODELS.register_module()
class MultiSpectralChannelAttention(ChannelAttention):
    """MMDetection's ``ChannelAttention`` (the one of RTMDet's CSP layers:
    squeeze, 1x1 conv, hard sigmoid) with the multi-spectral squeeze.

    Args:
        channels (int): The input (and output) channels.
        squeeze (dict, optional): Overrides of :data:`DEFAULT_SQUEEZE` (see
            :func:`build_squeeze`). Defaults to None: the defaults. (For
            GAP, use the parent class.)
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self, channels: int, squeeze: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(channels, init_cfg=init_cfg)
        self.global_avgpool = build_squeeze(
            channels, dict() if squeeze is None else squeeze)
