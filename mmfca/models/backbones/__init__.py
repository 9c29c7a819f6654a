# Copyright (c) mmfca contributors. All rights reserved.
from .fcanet import STAGE_DCT_SIZES, FcaBasicBlock, FcaNet, InvalidDepthError
from .multi_spectral_seresnet import (MultiSpectralSEResNet,
                                      MultiSpectralSEResNeXt)

__all__ = [
    'STAGE_DCT_SIZES', 'FcaBasicBlock', 'FcaNet', 'InvalidDepthError',
    'MultiSpectralSEResNet', 'MultiSpectralSEResNeXt'
]
