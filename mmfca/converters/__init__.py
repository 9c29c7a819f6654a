# Copyright (c) mmfca contributors. All rights reserved.
from .fcanet import (ConversionError, convert_detector, convert_file,
                     convert_imagenet, detect_depth, save_atomic)

__all__ = [
    'ConversionError', 'convert_detector', 'convert_file', 'convert_imagenet',
    'detect_depth', 'save_atomic'
]
