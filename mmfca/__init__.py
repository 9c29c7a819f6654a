# Copyright (c) mmfca contributors. All rights reserved.
"""FcaNet for OpenMMLab.

Importing this package registers ``MultiSpectralAttention`` and ``FcaNet``
in mmengine's root ``MODELS`` registry (and ``RNGStateHook`` in its
``HOOKS``), so they build from MMDetection, MMPretrain and MMSegmentation
configs alike (``custom_imports=dict(imports=['mmfca'])``). It also
makes mmengine load every checkpoint that is not the run's own with
``weights_only=True`` on any torch version (:mod:`mmfca.utils.checkpoint`).
"""
from . import datasets, engine, models  # noqa: F401
from .utils import checkpoint  # noqa: F401  (registers the safe loaders)
from .version import __version__

__all__ = ['__version__']
