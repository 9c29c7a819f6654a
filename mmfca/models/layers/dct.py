# Copyright (c) mmfca contributors. All rights reserved.
"""Frequency tables and 2D DCT-II filters of FcaNet.

FcaNet picks its frequencies on a 7x7 grid (the stage-4 map of a 224x224
ImageNet input) and scales them to each stage's filter size. Everything here
is plain, deterministic math on float64 tensors; the attention layer casts
the results to the input's dtype and device.
"""
import math
import re
from typing import List, Sequence, Tuple, Union

import torch

#: Side of the grid the published frequency rankings refer to.
FREQ_GRID = 7

#: Numbers of frequencies each named method is published with.
NUM_FREQS = (1, 2, 4, 8, 16, 32)

# (u list, v list) of each ranking; methods take the first n pairs.
_FREQ_TABLES = {
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

#: Every named frequency selection method, e.g. ``'top16'``.
FREQ_METHODS = tuple(f'{kind}{n}' for kind in _FREQ_TABLES for n in NUM_FREQS)

FreqSel = Union[str, Sequence[Sequence[int]]]


def get_freq_indices(freq_sel_method: FreqSel) -> List[Tuple[int, int]]:
    """Resolve a frequency selection to (u, v) pairs on the 7x7 grid.

    Args:
        freq_sel_method (str | Sequence[Sequence[int]]): A named method out
            of :data:`FREQ_METHODS` (``'top16'``, ``'low4'``, ...) or an
            explicit list of ``(u, v)`` pairs with ``0 <= u, v < 7``.

    Returns:
        list[tuple[int, int]]: The pairs; channel group ``k`` uses pair
        ``k``. ``u`` indexes the height axis, ``v`` the width axis.
    """
    if isinstance(freq_sel_method, str):
        match = re.fullmatch(r'(top|low|bot)(\d+)', freq_sel_method)
        if match is None or int(match.group(2)) not in NUM_FREQS:
            raise ValueError(
                f'Unknown frequency selection method {freq_sel_method!r}; '
                f'allowed: {", ".join(FREQ_METHODS)}, or an explicit list of '
                f'(u, v) pairs with 0 <= u, v < {FREQ_GRID}.')
        us, vs = _FREQ_TABLES[match.group(1)]
        num = int(match.group(2))
        return list(zip(us[:num], vs[:num]))
    return _check_explicit_freqs(freq_sel_method)


def _check_explicit_freqs(pairs) -> List[Tuple[int, int]]:
    allowed = (f'a non-empty list of (u, v) integer pairs with '
               f'0 <= u, v < {FREQ_GRID}, or one of {", ".join(FREQ_METHODS)}')
    try:
        pairs = [tuple(p) for p in pairs]
    except TypeError:
        raise TypeError(f'Malformed frequency list {pairs!r}; expected '
                        f'{allowed}.') from None
    if not pairs:
        raise ValueError(f'Empty frequency list; expected {allowed}.')
    for pair in pairs:
        ok = (len(pair) == 2 and all(
            isinstance(f, int) and not isinstance(f, bool) for f in pair)
              and all(0 <= f < FREQ_GRID for f in pair))
        if not ok:
            raise ValueError(f'Malformed frequency pair {pair!r} in '
                             f'{pairs!r}; expected {allowed}.')
    return pairs


def scale_freqs(freqs: Sequence[Tuple[int, int]], dct_h: int,
                dct_w: int) -> List[Tuple[int, int]]:
    """Scale 7x7-grid frequencies to a ``dct_h x dct_w`` filter.

    ``(u, v)`` becomes ``(u * (dct_h // 7), v * (dct_w // 7))``, so (1, 1)
    on the 7x7 grid is (2, 2) on 14x14, as in the released models.

    Args:
        freqs (Sequence[tuple[int, int]]): Pairs on the 7x7 grid.
        dct_h (int): Filter height, at least 7.
        dct_w (int): Filter width, at least 7.

    Returns:
        list[tuple[int, int]]: The scaled pairs.
    """
    check_filter_size(dct_h, dct_w)
    return [(u * (dct_h // FREQ_GRID), v * (dct_w // FREQ_GRID))
            for u, v in freqs]


def scale_freqs_to_input(freqs: Sequence[Tuple[int, int]], h: int,
                         w: int) -> List[Tuple[int, int]]:
    """Scale 7x7-grid frequencies to an ``h x w`` map in proportion:
    ``(u * h // 7, v * w // 7)``, the same relative frequency at any size.

    This is the rule of a squeeze whose filter follows the input's size
    (``dct_h=None``). On multiples of 7 it equals :func:`scale_freqs` (56x56
    maps get FcaNet's stage-1 frequencies); below 7 distinct grid
    frequencies may meet, but none silently becomes (0, 0) unless ``u < 7 /
    h``.

    Args:
        freqs (Sequence[tuple[int, int]]): Pairs on the 7x7 grid.
        h (int): Map height (>= 1).
        w (int): Map width (>= 1).

    Returns:
        list[tuple[int, int]]: Pairs with ``0 <= u < h``, ``0 <= v < w``.
    """
    return [(u * h // FREQ_GRID, v * w // FREQ_GRID) for u, v in freqs]


def check_filter_size(dct_h: int, dct_w: int) -> None:
    """Raise unless ``dct_h x dct_w`` can hold the 7x7 frequency grid."""
    for name, size in (('dct_h', dct_h), ('dct_w', dct_w)):
        if isinstance(size, bool) or not isinstance(size, int) \
                or size < FREQ_GRID:
            raise ValueError(
                f'{name}={size!r} cannot hold the {FREQ_GRID}x{FREQ_GRID} '
                f'frequency grid; filter sizes must be integers >= '
                f'{FREQ_GRID} (the release uses 56, 28, 14, 7).')


def dct_basis_1d(freq: int, length: int) -> torch.Tensor:
    """Orthonormal 1D DCT-II basis vector.

    ``cos(pi * freq * (i + 0.5) / length) / sqrt(length)``, times
    ``sqrt(2)`` when ``freq != 0``.

    Args:
        freq (int): Frequency, ``0 <= freq < length``.
        length (int): Signal length.

    Returns:
        Tensor: float64 vector of shape ``(length, )``.
    """
    pos = torch.arange(length, dtype=torch.float64) + 0.5
    basis = torch.cos(math.pi * freq * pos / length) / math.sqrt(length)
    return basis * math.sqrt(2) if freq != 0 else basis


def dct_filters(dct_h: int, dct_w: int,
                freqs: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """One 2D DCT-II filter per frequency (already scaled to the filter).

    Args:
        dct_h (int): Filter height.
        dct_w (int): Filter width.
        freqs (Sequence[tuple[int, int]]): ``(u, v)`` pairs in filter
            coordinates (see :func:`scale_freqs`).

    Returns:
        Tensor: float64, shape ``(len(freqs), dct_h, dct_w)``;
        ``out[k, i, j] = B[u_k](i) * B[v_k](j)``.
    """
    return torch.stack([
        torch.outer(dct_basis_1d(u, dct_h), dct_basis_1d(v, dct_w))
        for u, v in freqs
    ])


def channel_dct_filters(channels: int, dct_h: int, dct_w: int,
                        freqs: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """The per-channel filter bank of the release: group ``k`` of
    ``channels // len(freqs)`` consecutive channels gets frequency ``k``.

    Args:
        channels (int): Number of channels, divisible by ``len(freqs)``.
        dct_h (int): Filter height.
        dct_w (int): Filter width.
        freqs (Sequence[tuple[int, int]]): Pairs in filter coordinates.

    Returns:
        Tensor: float64, shape ``(channels, dct_h, dct_w)``.
    """
    check_channels_divisible(channels, len(freqs))
    return dct_filters(dct_h, dct_w, freqs).repeat_interleave(
        channels // len(freqs), dim=0)


def check_channels_divisible(channels: int, num_freqs: int) -> None:
    """Raise unless the channels split into ``num_freqs`` equal groups."""
    if channels % num_freqs != 0:
        divisors = [n for n in NUM_FREQS if channels % n == 0]
        raise ValueError(
            f'in_channels={channels} is not divisible by the number of '
            f'frequencies ({num_freqs}); each frequency needs an equal '
            f'channel group. Published counts that divide {channels}: '
            f'{divisors}.')


def adaptive_pool_matrix(in_size: int, out_size: int,
                         dtype: torch.dtype = torch.float64,
                         device=None) -> torch.Tensor:
    """The linear map of 1D adaptive average pooling.

    Bin ``a`` averages ``[floor(a * in / out), ceil((a + 1) * in / out))``,
    exactly as ``torch.nn.functional.adaptive_avg_pool2d`` does per axis.
    Built from tensor ops only, so ``in_size`` may also be a traced size
    (the squeeze's graph path).

    Args:
        in_size (int): Input length.
        out_size (int): Output length.
        dtype (torch.dtype): Defaults to float64.
        device (torch.device, optional): Defaults to None (CPU).

    Returns:
        Tensor: shape ``(out_size, in_size)``.
    """
    a = torch.arange(out_size, device=device)
    i = torch.arange(in_size, device=device)
    start = (a * in_size) // out_size
    end = ((a + 1) * in_size + out_size - 1) // out_size  # ceil
    mask = (i[None] >= start[:, None]) & (i[None] < end[:, None])
    return mask.to(dtype) / (end - start)[:, None].to(dtype)
