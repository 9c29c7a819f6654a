# Copyright (c) mmfca contributors. All rights reserved.
from .fcanet import STAGE_DCT_SIZES, FcaBasicBlock, FcaNet

__all__ = ['STAGE_DCT_SIZES', 'FcaBasicBlock', 'FcaNet']
