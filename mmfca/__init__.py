# Copyright (c) mmfca contributors. All rights reserved.
"""FcaNet for OpenMMLab.

Importing this package registers ``MultiSpectralAttention`` and ``FcaNet``
in mmengine's root ``MODELS`` registry (and ``RNGStateHook`` in its
``HOOKS``), so they build from MMDetection, MMPretrain and MMSegmentation
configs alike (``custom_imports=dict(imports=['mmfca'])``).
"""
from . import engine, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
