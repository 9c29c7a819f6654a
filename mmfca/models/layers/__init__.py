# Copyright (c) mmfca contributors. All rights reserved.
from .dct import (FREQ_GRID, FREQ_SEL_METHODS, NORMALIZATIONS,
                  adaptive_pool_matrix, channel_groups, dct_basis,
                  dct_filters, fca_filters, get_grid_freqs, pooled_filters,
                  scale_freqs)
from .dct_squeeze import AblationSqueeze, MultiSpectralSqueeze
from .channel_attentions import CBAMChannelAttention, ECALayer
from .multi_spectral_attention import MultiSpectralAttention
from .squeeze_switch import (DEFAULT_SQUEEZE, MultiSpectralChannelAttention,
                             MultiSpectralSELayer, build_squeeze,
                             use_multi_spectral_squeeze)

__all__ = [
    'FREQ_GRID', 'FREQ_SEL_METHODS', 'NORMALIZATIONS', 'adaptive_pool_matrix',
    'channel_groups', 'dct_basis', 'dct_filters', 'fca_filters',
    'get_grid_freqs', 'pooled_filters', 'scale_freqs', 'AblationSqueeze',
    'MultiSpectralAttention', 'MultiSpectralSqueeze', 'CBAMChannelAttention',
    'ECALayer', 'DEFAULT_SQUEEZE', 'MultiSpectralChannelAttention',
    'MultiSpectralSELayer', 'build_squeeze', 'use_multi_spectral_squeeze'
]
