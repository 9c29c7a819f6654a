# Copyright (c) mmfca contributors. All rights reserved.
"""MMPretrain's SE-ResNet and SE-ResNeXt with the multi-spectral squeeze:
the one-line switch from SE to FCA in an MMPretrain config,
``model = dict(backbone=dict(type='MultiSpectralSEResNet'))``."""
from typing import Optional

from mmengine.registry import MODELS
from mmpretrain.models.backbones import SEResNet, SEResNeXt

from ..layers.squeeze_switch import use_multi_spectral_squeeze


class _MultiSpectralSqueeze:
    """Builds the backbone, then switches its SE layers' squeeze."""

    def __init__(self, depth, squeeze: Optional[dict] = None, **kwargs):
        super().__init__(depth, **kwargs)
        use_multi_spectral_squeeze(self, {} if squeeze is None else squeeze)


@MODELS.register_module()
class MultiSpectralSEResNet(_MultiSpectralSqueeze, SEResNet):
    """MMPretrain's ``SEResNet`` whose SE layers squeeze with DCT
    frequencies (:func:`~mmfca.models.layers.use_multi_spectral_squeeze`).

    Same parameters, names and checkpoints as ``SEResNet``. Unlike FcaNet
    it keeps SE's biases and ``make_divisible`` widths, so an SE-ResNet
    checkpoint loads as it is.

    Args:
        depth (int): Network depth, from {50, 101, 152}.
        squeeze (dict, optional): Overrides of
            :data:`~mmfca.models.layers.squeeze_switch.DEFAULT_SQUEEZE`.
            Defaults to None: the defaults themselves (this backbone always
            squeezes with DCT frequencies; for GAP use ``SEResNet``).
        **kwargs: Every other argument of MMPretrain's ``SEResNet``.
    """


@MODELS.register_module()
class MultiSpectralSEResNeXt(_MultiSpectralSqueeze, SEResNeXt):
    """MMPretrain's ``SEResNeXt`` with the multi-spectral squeeze (see
    :class:`MultiSpectralSEResNet`).

    Args:
        depth (int): Network depth, from {50, 101, 152}.
        squeeze (dict, optional): As for :class:`MultiSpectralSEResNet`.
        **kwargs: Every other argument of MMPretrain's ``SEResNeXt``
            (``groups``, ``width_per_group``, ...).
    """
