# Copyright (c) mmfca contributors. All rights reserved.
"""What the three fitting methods share: the 49 cells of the 7x7 grid,
their filters at an FCA squeeze's size, and a model's FCA layers."""
from mmfca.models.layers.dct import FREQ_GRID
from mmfca.models.layers.dct_squeeze import cached_fca_filters
from mmfca.models.layers.multi_spectral_attention import \
    MultiSpectralAttention

#: The 49 cells of the 7x7 grid, row by row: cell index ``u * 7 + v``.
GRID_CELLS = tuple((u, v) for u in range(FREQ_GRID) for v in range(FREQ_GRID))


def cell_filters(squeeze, x, dtype=None):
    """The 49 cells' filters of an FCA squeeze (its filter size and
    normalization) for ``x``'s size: (49, H, W) in ``dtype`` (default
    ``x``'s), cached as the published squeeze caches its own."""
    h, w = x.shape[-2:]
    return cached_fca_filters(
        (GRID_CELLS, squeeze.dct_size, squeeze.normalization, None), h, w,
        dtype or x.dtype, x.device)[:, 0]


def set_all(model, module_type, name, value):
    """Set attribute ``name`` of every ``module_type`` module of ``model``
    to ``value``; returns how many were set."""
    modules = [m for m in model.modules() if isinstance(m, module_type)]
    for module in modules:
        setattr(module, name, value)
    return len(modules)


def fca_layers(model, purpose):
    """The FCA layers of ``model``; a ValueError naming ``purpose`` if it
    has none."""
    layers = [m for m in model.modules()
              if isinstance(m, MultiSpectralAttention)]
    if not layers:
        raise ValueError(f'{type(model).__name__} has no FCA layer '
                         f'(MultiSpectralAttention) {purpose}; use an '
                         'FcaNet backbone.')
    return layers
