# Copyright (c) mmfca contributors. All rights reserved.
"""FcaNet for OpenMMLab.

Importing this package (``custom_imports=dict(imports=['mmfca'])``)
registers, in mmengine's root registries, which MMDetection, MMPretrain and
MMSegmentation configs all build from:

* ``MODELS``: ``FcaNet``, ``MultiSpectralSEResNet``,
  ``MultiSpectralSEResNeXt`` (backbones); ``MultiSpectralAttention``,
  ``MultiSpectralSqueeze`` (also as 0.1.0's ``MultiSpectralDCT``),
  ``AblationSqueeze``, ``MultiSpectralSELayer``,
  ``MultiSpectralChannelAttention``, ``ECALayer``, ``CBAMChannelAttention``
  (layers and plugins);
* ``HOOKS``: ``RNGStateHook``;

and in MMDetection's own registries (MMDetection configs only):
``MODELS``: ``MatmulRoIExtractor``; ``TRANSFORMS``: ``OrientationPad``.
(tests/models/test_registry.py holds the same list.) It also makes mmengine
load every checkpoint that is not the run's own with ``weights_only=True``
on any torch version (:mod:`mmfca.utils.checkpoint`).
"""
from . import datasets, engine, models  # noqa: F401
from .utils import checkpoint  # noqa: F401  (registers the safe loaders)
from .version import __version__

__all__ = ['__version__']
