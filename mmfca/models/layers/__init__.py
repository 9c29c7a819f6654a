# Copyright (c) mmfca contributors. All rights reserved.
"""What configs and users name: the FCA layer, its squeezes, the squeeze
switch into other channel attentions. The frequency tables and DCT filters
are in :mod:`.dct`, the switch's defaults in :mod:`.squeeze_switch`."""
from .channel_attentions import CBAMChannelAttention, ECALayer
from .dct_squeeze import AblationSqueeze, MultiSpectralSqueeze
from .multi_spectral_attention import MultiSpectralAttention
from .squeeze_switch import (MultiSpectralChannelAttention,
                             MultiSpectralSELayer, use_multi_spectral_squeeze)

__all__ = [
    'MultiSpectralAttention', 'MultiSpectralSqueeze', 'AblationSqueeze',
    'ECALayer', 'CBAMChannelAttention', 'MultiSpectralSELayer',
    'MultiSpectralChannelAttention', 'use_multi_spectral_squeeze'
]
