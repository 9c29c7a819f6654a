# Copyright (c) mmfca contributors. All rights reserved.
"""The multi-spectral squeeze: channel group ``k`` is compressed with 2D DCT
frequency ``k`` instead of global average pooling (GAP, the (0, 0) term).

:class:`MultiSpectralDCT` is FCA's squeeze (the FCA layer's ``dct_layer``)
and, with ``keepdim=True``, a drop-in replacement for the
``nn.AdaptiveAvgPool2d(1)`` of any channel attention
(:mod:`mmfca.models.layers.squeeze_switch`). The functions below are its
fast path for the fixed DCT filter: adaptive pooling folded into separable
filter factors, cached per input size, and a squeeze that reads the input
once, as GAP does.
"""
import math
from collections import OrderedDict
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .dct import (FREQ_GRID, FreqSel, adaptive_pool_matrix,
                  channel_dct_filters, check_channels_divisible,
                  check_filter_size, dct_basis_1d, get_freq_indices,
                  scale_freqs, scale_freqs_to_input)

#: Filter variants of the authors' ablation (``filter_init``).
FILTER_INITS = ('dct', 'random')

#: Scalings of the DCT filters (``normalization``): the release's
#: orthonormal one, and one whose (0, 0) term is exactly the mean.
NORMALIZATIONS = ('ortho', 'mean')


#: Most input sizes whose folded filters are kept (shared by all layers).
FILTER_CACHE_SIZE = 64
_filter_cache: 'OrderedDict[tuple, Tuple[torch.Tensor, ...]]' = OrderedDict()

#: Maps of at most this many pixels are squeezed with one dot product per
#: channel; larger ones row by row (shorter float sums, and faster there).
ONE_DOT_MAX_PIXELS = 256


def normalization_factor(normalization, dct_h, dct_w):
    """What the orthonormal filters are multiplied by: 1 for ``'ortho'``,
    ``1 / sqrt(dct_h * dct_w)`` for ``'mean'``, which turns the (0, 0)
    term ``GAP * sqrt(dct_h * dct_w)`` into ``GAP``."""
    return 1.0 if normalization == 'ortho' else 1.0 / math.sqrt(dct_h * dct_w)


def pooled_dct_factors(dct_h, dct_w, freqs, h, w, dtype, device,
                       normalization='ortho'):
    """The separable factors of each frequency's DCT filter with adaptive
    pooling from ``h x w`` to ``dct_h x dct_w`` folded in.

    ``sum_ij x[i, j] * rows[k, i] * cols[k, j] * scale[k]`` equals pooling
    ``x`` to the filter size and applying the DCT filter of frequency ``k``.
    ``rows`` and ``cols`` have unit L1 norm, which keeps low-precision
    products within the input's range.

    Args:
        dct_h (int): Filter height.
        dct_w (int): Filter width.
        freqs (tuple): ``(u, v)`` pairs in filter coordinates.
        h (int): Input height.
        w (int): Input width.
        dtype (torch.dtype): Dtype of ``rows`` and ``cols``.
        device (torch.device): Device of the outputs.
        normalization (str): ``'ortho'`` or ``'mean'`` (the filters divided
            by ``sqrt(dct_h * dct_w)``; see :class:`MultiSpectralDCT`).

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``rows`` (n, h), ``cols`` (n, w) and
        ``scale`` (1, n, 1) in :func:`accumulation_dtype` of ``dtype``
        (float64 stays float64). Cached (LRU, shared by all layers).
    """
    key = (dct_h, dct_w, tuple(freqs), h, w, dtype, str(device),
           normalization)
    if key in _filter_cache:
        _filter_cache.move_to_end(key)
        return _filter_cache[key]
    pool_h = adaptive_pool_matrix(h, dct_h)
    pool_w = adaptive_pool_matrix(w, dct_w)
    rows = torch.stack([pool_h.t() @ dct_basis_1d(u, dct_h) for u, _ in freqs])
    cols = torch.stack([pool_w.t() @ dct_basis_1d(v, dct_w) for _, v in freqs])
    # a factor is exactly 0 when pooling annihilates its frequency (e.g. a
    # 1-pixel axis: a constant is orthogonal to every u > 0); keep it 0
    tiny = torch.finfo(torch.float64).tiny
    row_l1 = rows.abs().sum(1).clamp_min(tiny)
    col_l1 = cols.abs().sum(1).clamp_min(tiny)
    scale = row_l1 * col_l1 * normalization_factor(normalization, dct_h,
                                                   dct_w)
    entry = ((rows / row_l1[:, None]).to(device, dtype),
             (cols / col_l1[:, None]).to(device, dtype),
             scale.view(1, -1, 1).to(device, accumulation_dtype(dtype)))
    _filter_cache[key] = entry
    if len(_filter_cache) > FILTER_CACHE_SIZE:
        _filter_cache.popitem(last=False)
    return entry


def accumulation_dtype(dtype):
    """float32, or ``dtype`` if it is wider (float64): the dtype of the
    squeeze's scale and of the excitation's arithmetic.

    A plain comparison rather than ``torch.promote_types``, which
    ``torch.compile`` cannot trace on torch < 2.2 (it returns a dtype).
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def _outer(rows, cols):
    """Each group's 2D filter, ``rows[g, i] * cols[g, j]``: (G, h, w)."""
    return rows[:, :, None] * cols[:, None, :]


def group_dot(x, rows, cols):
    """``y[n, c] = sum_ij x[n, c, i, j] * rows[g, i] * cols[g, j]`` with
    ``g = c // (C / G)``: one read of ``x``, no full-size temporary.

    Maps of at most ``ONE_DOT_MAX_PIXELS`` pixels take one matrix-vector
    product per channel group; larger ones a product over columns, then
    over rows (shorter float sums, and faster there).
    """
    n, c, h, w = x.shape
    groups = rows.shape[0]
    if h * w <= ONE_DOT_MAX_PIXELS:
        filters = _outer(rows, cols).view(1, groups, h * w, 1)
        y = x.reshape(n, groups, c // groups, h * w) @ filters
    else:
        y = x.reshape(n, groups, c // groups * h, w) @ cols.view(
            1, groups, w, 1)
        y = y.view(n, groups, c // groups, h) @ rows.view(1, groups, h, 1)
    return y.view(n, c)


def dct_squeeze(x, rows, cols, scale):
    """The fixed-DCT squeeze from :func:`pooled_dct_factors`' outputs:
    :func:`group_dot` times each group's scale, in float32 or the input's
    dtype if wider (never narrowing float64).

    Returns:
        Tensor: (N, C).
    """
    n, c = x.shape[:2]
    groups = rows.shape[0]
    y = group_dot(x, rows, cols).view(n, groups, c // groups)
    return (y.to(scale.dtype) * scale).view(n, c)


#: ``torch.compiler.is_compiling`` (torch >= 2.3) or its older name.
_dynamo_compiling = getattr(getattr(torch, 'compiler', None), 'is_compiling',
                            None) or torch._dynamo.is_compiling


def in_graph_capture() -> bool:
    """Whether the forward is being recorded as a graph: ``torch.jit.trace``
    (FLOP counting, the TorchScript ONNX exporter) or ``torch.compile``.
    Python-side caches would freeze one input size into such a graph (or,
    with dynamic shapes, fail to trace), so the squeeze then computes its
    filters in the graph (:meth:`MultiSpectralDCT.graph_squeeze`) and the
    FCA layer takes its module path (Inductor fuses that backward itself;
    torch 2.1's dynamo cannot trace the fused function's backward)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or \
        _dynamo_compiling()


def _graph_dct_basis(freqs, length, normalization):
    """Orthonormal 1D DCT-II rows ``(G, length)`` of ``freqs`` (a (G, )
    tensor) from tensor ops (``length`` may be a traced size); divided by
    another ``sqrt(length)`` for ``normalization='mean'``."""
    pos = torch.arange(length, device=freqs.device).float() + 0.5
    basis = torch.cos(math.pi * freqs.float()[:, None] * pos[None] / length)
    gain = torch.where(freqs == 0, torch.ones_like(basis[:, 0]),
                       torch.full_like(basis[:, 0], math.sqrt(2)))
    norm = length**0.5 if normalization == 'ortho' else length
    return basis * gain[:, None] / norm


@MODELS.register_module()
class MultiSpectralDCT(nn.Module):
    """The multi-spectral squeeze of FCA: channel group ``k`` is compressed
    with the 2D DCT frequency ``k``,
    ``y_c = sum_ij x_c(i, j) * B[u_k, v_k](i, j)``.

    With frequency (0, 0) alone it is GAP up to a constant: the orthonormal
    (0, 0) term is ``GAP * sqrt(H * W)`` (the paper's theorem), and with
    ``normalization='mean'`` it is GAP exactly.

    Filter size, two rules:

    * ``dct_h, dct_w`` given (FcaNet's rule): an input of another size is
      first adaptively average pooled to the filter size, as in the release;
      7x7-grid frequencies are scaled by ``dct_h // 7``. ``weight`` holds
      the per-channel filter bank with the release's layout
      (``C x dct_h x dct_w``, saved as ``dct_layer.weight``).
    * ``dct_h = dct_w = None``: the filter follows each input's own size (no
      pooling, frequencies scaled in proportion, see
      :func:`~mmfca.models.layers.dct.scale_freqs_to_input`); nothing is
      stored. On a 224x224 network's 56/28/14/7 maps this is FcaNet's rule.

    The fixed DCT filter takes the fast path (pooling folded into separable
    factors, one read of the input, see :func:`group_dot`); the ablation's
    learnable or random filters take the general one.

    Args:
        channels (int): Number of input channels, divisible by the number of
            frequencies.
        dct_h (int, optional): Filter height (>= 7), or None to follow the
            input. Defaults to 7.
        dct_w (int, optional): Filter width (>= 7), or None with ``dct_h``.
            Defaults to 7.
        freq_sel_method (str | list): ``'top16'``, any of ``top|low|bot`` x
            ``1,2,4,8,16,32``, or an explicit list of (u, v) pairs on the
            7x7 grid. Defaults to ``'top16'``.
        normalization (str): ``'ortho'`` (the release's orthonormal DCT,
            for FcaNet's weights) or ``'mean'`` (filters divided by
            ``sqrt(dct_h * dct_w)``: the (0, 0) term is exactly the mean, so
            a trained GAP module keeps working). Defaults to ``'ortho'``.
        learnable (bool): Make the filter a trainable parameter instead of a
            fixed buffer (ablation; needs a fixed size). Defaults to False.
        filter_init (str): ``'dct'`` (the paper) or ``'random'`` (the
            ablation's random initialisation). Defaults to ``'dct'``.
        keepdim (bool): Return (N, C, 1, 1), like
            ``nn.AdaptiveAvgPool2d(1)``, instead of (N, C). Defaults to
            False.
    """

    def __init__(self,
                 channels: int,
                 dct_h: Optional[int] = 7,
                 dct_w: Optional[int] = 7,
                 freq_sel_method: FreqSel = 'top16',
                 normalization: str = 'ortho',
                 learnable: bool = False,
                 filter_init: str = 'dct',
                 keepdim: bool = False):
        super().__init__()
        if filter_init not in FILTER_INITS:
            raise ValueError(f'Unknown filter_init {filter_init!r}; allowed: '
                             f'{FILTER_INITS}.')
        if normalization not in NORMALIZATIONS:
            raise ValueError(f'Unknown normalization {normalization!r}; '
                             f'allowed: {NORMALIZATIONS}.')
        self.grid_freqs = tuple(get_freq_indices(freq_sel_method))
        check_channels_divisible(channels, len(self.grid_freqs))
        self.channels = channels
        self.dct_h, self.dct_w = dct_h, dct_w
        self.normalization = normalization
        self.learnable = learnable
        self.filter_init = filter_init
        self.keepdim = keepdim
        if dct_h is None and dct_w is None:
            if learnable or filter_init != 'dct':
                raise ValueError(
                    'A filter that follows the input size (dct_h=dct_w=None) '
                    'is the fixed DCT; learnable=True or filter_init='
                    f'{filter_init!r} need a fixed dct_h and dct_w (>= 7).')
            self.freqs = None  # per input size, see factors()
            return
        check_filter_size(dct_h, dct_w)
        self.freqs = tuple(scale_freqs(self.grid_freqs, dct_h, dct_w))
        if filter_init == 'dct':
            weight = channel_dct_filters(channels, dct_h, dct_w, self.freqs)
        else:
            weight = torch.randn(channels, dct_h, dct_w, dtype=torch.float64)
            weight = weight / weight.flatten(1).norm(dim=1).view(-1, 1, 1)
        weight = (weight * normalization_factor(normalization, dct_h,
                                                dct_w)).float()
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer('weight', weight)

    @property
    def separable(self) -> bool:
        """Whether the filter is the fixed DCT (the fast path applies)."""
        return not self.learnable and self.filter_init == 'dct'

    @property
    def follows_input(self) -> bool:
        """Whether the filter takes each input's size (``dct_h=None``)."""
        return self.dct_h is None

    def extra_repr(self):
        size = 'input' if self.follows_input else (self.dct_h, self.dct_w)
        return (f'channels={self.channels}, dct={size}, '
                f'freqs={list(self.grid_freqs)} (7x7 grid), normalization='
                f'{self.normalization!r}, learnable={self.learnable}, '
                f'filter_init={self.filter_init!r}')

    def factors(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The fixed DCT's cached separable factors for ``x``'s size, dtype
        and device (see :func:`pooled_dct_factors`)."""
        h, w = x.shape[2:]
        if self.follows_input:
            dct_h, dct_w = h, w
            freqs = scale_freqs_to_input(self.grid_freqs, h, w)
        else:
            dct_h, dct_w, freqs = self.dct_h, self.dct_w, self.freqs
        return pooled_dct_factors(dct_h, dct_w, freqs, h, w, x.dtype,
                                  x.device, self.normalization)

    def graph_squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed-DCT squeeze as a graph that holds for every input size
        (used while a graph is captured, see :func:`in_graph_capture`: ONNX
        export, FLOP counting, ``torch.compile``): the pooled filters
        are computed from the input's shape with tensor ops, and each
        channel takes one dot product with its group's filter (one
        multiply-add per input element, as GAP's one add).

        Returns:
            Tensor: (N, C), float32 (float64 for float64 inputs).
        """
        h, w = x.shape[2], x.shape[3]
        grid = torch.tensor(self.grid_freqs, device=x.device)
        norm = self.normalization
        if self.follows_input:
            # scale_freqs_to_input's rule, on traced sizes
            rows = _graph_dct_basis(grid[:, 0] * h // FREQ_GRID, h, norm)
            cols = _graph_dct_basis(grid[:, 1] * w // FREQ_GRID, w, norm)
        else:
            freqs = torch.tensor(self.freqs, device=x.device)
            rows = _graph_dct_basis(freqs[:, 0], self.dct_h, norm) @ \
                adaptive_pool_matrix(h, self.dct_h, torch.float32, x.device)
            cols = _graph_dct_basis(freqs[:, 1], self.dct_w, norm) @ \
                adaptive_pool_matrix(w, self.dct_w, torch.float32, x.device)
        groups = len(self.grid_freqs)
        wide = accumulation_dtype(x.dtype)
        filters = _outer(rows, cols).to(wide).reshape(1, groups, -1, 1)
        y = x.to(wide).reshape(x.shape[0], groups, self.channels // groups,
                               -1) @ filters
        return y.reshape(x.shape[0], self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze ``x`` of shape (N, C, H, W) to (N, C) (or (N, C, 1, 1)
        with ``keepdim``), in float32 or the input's dtype if wider.

        With the fixed DCT filter (the fast path), low-precision products
        run on factors of unit L1 norm (no overflow for any input that fits
        the dtype) and the scale is applied afterwards in float32. The
        ablation's learnable or random filters take the general path: the
        pooling folded into the per-channel filter, one batched product.
        While a graph is traced, :meth:`graph_squeeze` is used.
        """
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f'{type(self).__name__} expects an (N, {self.channels}, H, '
                f'W) input, got shape {tuple(x.shape)}.')
        n, c, h, w = x.shape
        if self.separable and in_graph_capture():
            y = self.graph_squeeze(x)
        elif self.separable:
            y = dct_squeeze(x, *self.factors(x))
        else:
            pool_h = adaptive_pool_matrix(h, self.dct_h).to(self.weight)
            pool_w = adaptive_pool_matrix(w, self.dct_w).to(self.weight)
            folded = torch.einsum('ah,cab,bw->chw', pool_h, self.weight,
                                  pool_w)
            # (C, N, HW) @ (C, HW, 1): a batched dot product over channels.
            y = torch.bmm(
                x.reshape(n, c, h * w).transpose(0, 1),
                folded.reshape(c, h * w, 1).to(x.dtype)).view(c, n).t()
        return y.view(n, c, 1, 1) if self.keepdim else y

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fast path uses the DCT it computes, so a fixed DCT filter read
        # from a checkpoint must be that DCT (released weights are).
        key = prefix + 'weight'
        if self.separable and not self.follows_input and key in state_dict:
            loaded = state_dict[key]
            if loaded.shape == self.weight.shape and not torch.allclose(
                    loaded.double(), self.weight.double(), atol=1e-5):
                err = (loaded.double() - self.weight.double()).abs().max()
                raise ValueError(
                    f'{key} is not the fixed DCT filter of frequencies '
                    f'{list(self.freqs)} on {self.dct_h}x{self.dct_w} '
                    f'({self.normalization}; max difference {err:.3g}); '
                    f'build the layer with the checkpoint\'s freq_sel_method,'
                    f' or with learnable=True or filter_init="random" for a '
                    f'non-DCT filter.')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
