# Copyright (c) mmfca contributors. All rights reserved.
"""What mmfca's tests and benchmarks measure the FCA layer against, as
``mmdet.testing`` is for MMDetection's: nothing here is used by the models.

* :mod:`.fca_reference`: the FCA layer's formula written independently of
  the layer (the float64 DCT from scipy), SE's global average pooling and
  the release's pool-then-filter computation;
* :mod:`.op_counts`: the ATen kernels a call dispatches and the full-size
  passes among them (the device-independent cost the tests pin).
"""
from .fca_reference import (attention, channel_weights, dct_squeeze,
                            reference_fca, release_squeeze)
from .op_counts import OpCount, count_ops

__all__ = [
    'OpCount', 'attention', 'channel_weights', 'count_ops', 'dct_squeeze',
    'reference_fca', 'release_squeeze'
]
