# Copyright (c) mmfca contributors. All rights reserved.
from .dct import (FREQ_METHODS, NORMALIZATIONS, adaptive_pool_matrix,
                  channel_groups, dct_basis, dct_filters, fca_filters,
                  fold_pooling, get_freq_indices, scale_freqs,
                  scale_freqs_to_input)
from .dct_squeeze import MultiSpectralDCT
from .channel_attentions import CBAMChannelAttention, ECALayer
from .multi_spectral_attention import MultiSpectralAttention
from .squeeze_switch import (DEFAULT_SQUEEZE, MultiSpectralChannelAttention,
                             MultiSpectralSELayer, build_squeeze,
                             use_multi_spectral_squeeze)

__all__ = [
    'FREQ_METHODS', 'NORMALIZATIONS', 'adaptive_pool_matrix',
    'channel_groups', 'dct_basis', 'dct_filters', 'fca_filters',
    'fold_pooling', 'get_freq_indices', 'scale_freqs', 'scale_freqs_to_input',
    'MultiSpectralAttention', 'MultiSpectralDCT', 'CBAMChannelAttention',
    'ECALayer', 'DEFAULT_SQUEEZE', 'MultiSpectralChannelAttention',
    'MultiSpectralSELayer', 'build_squeeze', 'use_multi_spectral_squeeze'
]
