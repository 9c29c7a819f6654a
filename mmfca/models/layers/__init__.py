# Copyright (c) mmfca contributors. All rights reserved.
from .dct import (FREQ_METHODS, adaptive_pool_matrix, channel_dct_filters,
                  dct_basis_1d, dct_filters, get_freq_indices, scale_freqs)
from .multi_spectral_attention import MultiSpectralAttention, MultiSpectralDCT

__all__ = [
    'FREQ_METHODS', 'adaptive_pool_matrix', 'channel_dct_filters',
    'dct_basis_1d', 'dct_filters', 'get_freq_indices', 'scale_freqs',
    'MultiSpectralAttention', 'MultiSpectralDCT'
]
