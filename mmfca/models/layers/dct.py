# Copyright (c) mmfca contributors. All rights reserved.
"""Frequency tables and 2D DCT-II filters of FcaNet.

FcaNet picks its frequencies on a 7x7 grid (the stage-4 map of a 224x224
ImageNet input) and scales them to each stage's filter size. Everything here
is plain, deterministic math on float64 tensors; the attention layer casts
the results to the input's dtype and device.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch

#: Side of the grid the published frequency rankings refer to.
FREQ_GRID = 7

#: Scalings of the DCT filters: the release's orthonormal one, and one whose
#: (0, 0) term is exactly the mean (see :func:`normalization_gain`).
NORMALIZATIONS = ('ortho', 'mean')

# The 7x7-grid pairs of each ranking (u list, v list); the named methods
# take the first n pairs, n in 1, 2, 4, 8, 16, 32.
_GRID_FREQ_TABLES = {
    # ranked by the paper's single-frequency ImageNet experiment
    'top': ((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2,
             4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1),
            (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2,
             6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)),
    # zig-zag from the lowest frequency
    'low': ((0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0,
             1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4),
            (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5,
             4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3)),
    # worst-ranked first
    'bot': ((6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5,
             6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6),
            (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1,
             4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3)),
}

#: Every named ``freq_sel_method``, e.g. ``'top16'``.
FREQ_SEL_METHODS = tuple(f'{kind}{n}' for kind in _GRID_FREQ_TABLES
                         for n in (1, 2, 4, 8, 16, 32))

_ALLOWED = (f'{", ".join(FREQ_SEL_METHODS)}, or a non-empty list of (u, v) '
            f'integer pairs with 0 <= u, v < {FREQ_GRID}')

#: A ``freq_sel_method``: a name or explicit 7x7-grid pairs.
FreqSelMethod = Union[str, Sequence[Sequence[int]]]


def get_grid_freqs(freq_sel_method: FreqSelMethod) -> List[Tuple[int, int]]:
    """Resolve a frequency selection to its (u, v) pairs on the 7x7 grid.

    Args:
        freq_sel_method (str | Sequence[Sequence[int]]): A named method out
            of :data:`FREQ_SEL_METHODS` (``'top16'``, ``'low4'``, ...) or
            explicit ``(u, v)`` pairs with ``0 <= u, v < 7``.

    Returns:
        list[tuple[int, int]]: The grid pairs; channel group ``k`` uses
        pair ``k``. ``u`` indexes the height axis, ``v`` the width axis.
    """
    if isinstance(freq_sel_method, str):
        if freq_sel_method not in FREQ_SEL_METHODS:
            raise ValueError(f'Unknown frequency selection method '
                             f'{freq_sel_method!r}; allowed: {_ALLOWED}.')
        us, vs = _GRID_FREQ_TABLES[freq_sel_method[:3]]
        return list(zip(us, vs))[:int(freq_sel_method[3:])]
    return _check_explicit_grid_freqs(freq_sel_method)


def _check_explicit_grid_freqs(pairs) -> List[Tuple[int, int]]:
    try:
        pairs = [tuple(p) for p in pairs]
    except TypeError:
        raise TypeError(f'Malformed frequency list {pairs!r}; expected '
                        f'{_ALLOWED}.') from None
    if not pairs:
        raise ValueError(f'Empty frequency list; expected {_ALLOWED}.')
    for pair in pairs:  # ints (not bools, not floats) on the grid
        if len(pair) != 2 or not all(
                type(f) is int and 0 <= f < FREQ_GRID for f in pair):
            raise ValueError(f'Malformed frequency pair {pair!r} in '
                             f'{pairs!r}; expected {_ALLOWED}.')
    return pairs


def scale_freqs(grid_freqs, h, w, proportional: bool = False):
    """The filter pairs (``freqs``) of 7x7-grid pairs on an ``h x w``
    filter, by one of two rules:

    * FcaNet's (default), for a filter of fixed size ``dct_h x dct_w``:
      ``(u * (h // 7), v * (w // 7))``, so (1, 1) on the grid is (2, 2) on
      14x14, as in the released models; ``h, w >= 7``.
    * ``proportional=True``, for a filter that follows its input's size:
      ``(u * h // 7, v * w // 7)``, FcaNet's rule on multiples of 7 (56x56
      maps get FcaNet's stage-1 frequencies); below 7 grid frequencies may
      meet.

    Args:
        grid_freqs (Sequence[tuple[int, int]] | Tensor): Grid pairs, or a
            (G, 2) integer tensor of them (then ``h`` and ``w`` may be
            traced sizes).
        h (int): Filter height.
        w (int): Filter width.
        proportional (bool): The second rule. Defaults to False.

    Returns:
        list[tuple[int, int]] | Tensor: The filter pairs, in the kind of
        ``grid_freqs``.
    """
    if not proportional:  # u * (h // 7) = u * h' // 7, h' = h rounded to 7s
        check_filter_size(h, w)
        h, w = h // FREQ_GRID * FREQ_GRID, w // FREQ_GRID * FREQ_GRID
    if isinstance(grid_freqs, torch.Tensor):  # tensor ops: h, w may be traced
        return torch.stack([grid_freqs[:, 0] * h // FREQ_GRID,
                            grid_freqs[:, 1] * w // FREQ_GRID], 1)
    return [(u * h // FREQ_GRID, v * w // FREQ_GRID) for u, v in grid_freqs]


def check_filter_size(dct_h: int, dct_w: int) -> None:
    """Raise unless ``dct_h x dct_w`` can hold the 7x7 frequency grid."""
    for name, size in (('dct_h', dct_h), ('dct_w', dct_w)):
        if type(size) is not int or size < FREQ_GRID:  # bools too
            raise ValueError(
                f'{name}={size!r} cannot hold the {FREQ_GRID}x{FREQ_GRID} '
                f'frequency grid; filter sizes must be integers >= '
                f'{FREQ_GRID} (the release uses 56, 28, 14, 7).')


def dct_basis(freqs, length, dtype=torch.float64, device=None):
    """Orthonormal 1D DCT-II basis, one row per frequency ``f``:
    ``B[f](i) = cos(pi * f * (i + 0.5) / L) / sqrt(L)``, times ``sqrt(2)``
    when ``f != 0``; shape ``(len(freqs), length)``. Tensor ops only, so
    ``length`` may be a traced size (one graph for every input size)."""
    freqs = torch.as_tensor(freqs, device=device).to(dtype)
    pos = torch.arange(length, device=device).to(dtype) + 0.5
    basis = torch.cos(math.pi * freqs[:, None] * pos[None] / length)
    gain = 1 + (math.sqrt(2) - 1) * (freqs != 0).to(dtype)
    return basis * gain[:, None] / length**0.5


def dct_filters(dct_h, dct_w, freqs, dtype=torch.float64, device=None):
    """One 2D DCT-II filter per filter pair ``(u, v)`` (see
    :func:`scale_freqs`; a list or a (K, 2) tensor):
    ``out[k, i, j] = B[u_k](i) * B[v_k](j)``, shape ``(K, dct_h, dct_w)``.
    """
    freqs = torch.as_tensor(freqs, device=device).view(-1, 2)
    rows = dct_basis(freqs[:, 0], dct_h, dtype, device)
    cols = dct_basis(freqs[:, 1], dct_w, dtype, device)
    return rows[:, :, None] * cols[:, None, :]


def channel_groups(in_channels: int, num_freqs: int) -> List[int]:
    """Sizes of the consecutive channel groups, one per frequency:
    ``in_channels // num_freqs`` each, as in the release; when that does not
    divide, the first ``in_channels % num_freqs`` groups take one more
    (``numpy.array_split``'s rule), so every channel count works (with
    fewer channels than frequencies, the last groups are empty)."""
    if type(in_channels) is not int or in_channels < 1:  # bools too
        raise ValueError(f'in_channels={in_channels!r} is not allowed; it '
                         f'must be a positive integer.')
    base, extra = divmod(in_channels, num_freqs)
    return [base + (k < extra) for k in range(num_freqs)]


def adaptive_pool_matrix(in_size, out_size, dtype=torch.float64,
                         device=None) -> torch.Tensor:
    """The (out_size, in_size) matrix of 1D adaptive average pooling: bin
    ``a`` averages ``[floor(a * in / out), ceil((a + 1) * in / out))``, as
    ``F.adaptive_avg_pool2d`` does per axis. ``in_size`` may be traced."""
    a = torch.arange(out_size, device=device)
    i = torch.arange(in_size, device=device)
    start = (a * in_size) // out_size
    end = ((a + 1) * in_size + out_size - 1) // out_size  # ceil
    mask = (i[None] >= start[:, None]) & (i[None] < end[:, None])
    return mask.to(dtype) / (end - start)[:, None].to(dtype)


def pooled_filters(filters: torch.Tensor, h, w) -> torch.Tensor:
    """(K, dct_h, dct_w) filters as (K, h, w) filters of an ``h x w`` input
    with the adaptive average pooling to ``dct_h x dct_w`` folded in:
    ``out[k] = P_h^T filters[k] P_w`` (:func:`adaptive_pool_matrix`; the
    identity at equal sizes), so ``sum(x * out[k]) = sum(pool(x) *
    filters[k])``. Differentiable in ``filters``; ``h``, ``w`` may be
    traced."""
    pool_h = adaptive_pool_matrix(h, filters.shape[1], filters.dtype,
                                  filters.device)
    pool_w = adaptive_pool_matrix(w, filters.shape[2], filters.dtype,
                                  filters.device)
    return pool_h.t() @ filters @ pool_w


def normalization_gain(normalization: str, dct_h, dct_w):
    """What the orthonormal filters are multiplied by: 1 for ``'ortho'``,
    ``1 / sqrt(dct_h * dct_w)`` for ``'mean'``, which turns the (0, 0)
    term ``GAP * sqrt(dct_h * dct_w)`` into ``GAP``."""
    return 1.0 if normalization == 'ortho' else (dct_h * dct_w)**-0.5


def fca_filters(grid_freqs: Sequence[Tuple[int, int]],
                dct_size: Optional[Tuple[int, int]],
                size: Tuple[int, int],
                normalization: str = 'ortho',
                group_sizes: Optional[Sequence[int]] = None,
                dtype: torch.dtype = torch.float64,
                device=None) -> torch.Tensor:
    """FCA's filters for an ``h x w`` input, the one derivation behind the
    stored filter bank, the squeeze's cached filters and those computed in
    a captured graph (tensor ops only: ``h``, ``w`` may be traced).

    Args:
        grid_freqs (Sequence[tuple[int, int]]): Pairs on the 7x7 grid.
        dct_size (tuple[int, int], optional): ``(dct_h, dct_w)``: the DCT
            of that size (:func:`scale_freqs`'s default rule), with the
            pooling from ``h x w`` folded in (:func:`pooled_filters`).
            None: the input's own DCT (``scale_freqs(..., proportional=
            True)``).
        size (tuple[int, int]): The input's ``(h, w)``.
        normalization (str): ``'ortho'`` or ``'mean'`` (see
            :func:`normalization_gain`). Defaults to ``'ortho'``.
        group_sizes (Sequence[int], optional): Filter ``k`` repeated for
            each channel of group ``k`` (see :func:`channel_groups`).
            Defaults to None: one filter per frequency.
        dtype (torch.dtype): Defaults to float64.
        device (torch.device, optional): Defaults to None (CPU).

    Returns:
        Tensor: ``(len(grid_freqs), h, w)``, or ``(sum(group_sizes), h,
        w)``.
    """
    h, w = size
    if dct_size is None:
        freqs = scale_freqs(torch.tensor(grid_freqs, device=device), h, w,
                            proportional=True)
        filters = dct_filters(h, w, freqs, dtype, device) * \
            normalization_gain(normalization, h, w)
    else:
        freqs = scale_freqs(grid_freqs, *dct_size)
        filters = pooled_filters(
            dct_filters(*dct_size, freqs, dtype, device) *
            normalization_gain(normalization, *dct_size), h, w)
    if group_sizes is not None:
        filters = filters.repeat_interleave(
            torch.tensor(group_sizes, device=device), dim=0)
    return filters
