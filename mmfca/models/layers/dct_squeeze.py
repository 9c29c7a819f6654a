# Copyright (c) mmfca contributors. All rights reserved.
"""The multi-spectral squeeze: channel group ``k`` is compressed with 2D DCT
frequency ``k`` instead of global average pooling (GAP, the (0, 0) term).

:class:`MultiSpectralDCT` is FCA's squeeze (the FCA layer's ``dct_layer``)
and, with ``keepdim=True``, a drop-in replacement for the
``nn.AdaptiveAvgPool2d(1)`` of any channel attention
(:mod:`mmfca.models.layers.squeeze_switch`).
"""
from collections import OrderedDict
from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .cpu_specialisation import chunked_products_sum, cpu_specialised
from .dct import (NORMALIZATIONS, FreqSel, adaptive_pool_matrix,
                  channel_dct_filters, channel_groups, check_filter_size,
                  get_freq_indices, normalization_gain, pooled_dct_filters,
                  scale_freqs)

#: Filter variants of the authors' ablation (``filter_init``).
FILTER_INITS = ('dct', 'random')


def multi_spectral_squeeze(x: torch.Tensor, filters: torch.Tensor,
                           form: str = 'products') -> torch.Tensor:
    """``y[n, c] = sum_ij x[n, c, i, j] * filters[g(c), 0, i, j]``.

    Args:
        x (Tensor): (N, C, H, W), any memory format.
        filters (Tensor): (G, 1, H, W) in ``x``'s dtype, ``C % G == 0``;
            group ``g`` is channels ``[g * C / G, (g + 1) * C / G)``.
        form (str): How the sum is taken (see :func:`squeeze_form`):
            ``'products'`` (the formula: the products, then their sum),
            ``'chunked'`` (the same, a slice of the groups at a time, without
            autograd) or ``'matvec'`` (one matrix-vector product per group,
            for graph capture). Defaults to ``'products'``.

    Returns:
        Tensor: (N, C) in float32, or float64 for a float64 input. The
        products are taken in the input's dtype (the filters' entries are
        at most 1 in magnitude, so they stay in range), the sum in float32.
    """
    n, c, h, w = x.shape
    groups = filters.shape[0]
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if form == 'matvec':
        y = x.to(acc).reshape(n, groups, c // groups, h * w) @ \
            filters.to(acc).reshape(groups, h * w, 1)
        return y.reshape(n, c)
    x = x.view(n, groups, c // groups, h, w)
    if form == 'chunked':
        return chunked_products_sum(x, filters[None], acc).view(n, c)
    prod = x * filters
    if prod.dtype == acc or not torch.is_grad_enabled():
        return prod.sum((3, 4), dtype=acc).view(n, c)
    return _SumHW.apply(prod, acc).view(n, c)


def squeeze_form(x: torch.Tensor, graph: bool) -> str:
    """The form of :func:`multi_spectral_squeeze` for ``x``: ``'matvec'``
    while a graph is captured (``graph``, see :func:`in_graph_capture`):
    one multiply-add per element, as FLOP counters count GAP, and one graph
    for every input size (ONNX, ``torch.compile``); ``'chunked'`` for the
    CPU specialisation (:func:`cpu_specialised`) without autograd; else
    ``'products'``, the formula. On CUDA the matrix-vector form measured no
    faster than the products, and 2.6-7.7x slower on channels_last maps,
    which it must copy (``benchmarks/RESULTS.md``)."""
    if graph:
        return 'matvec'
    if not torch.is_grad_enabled() and cpu_specialised(x):
        return 'chunked'
    return 'products'


class _SumHW(torch.autograd.Function):
    """``prod.sum((3, 4), dtype=acc)`` for a bf16/fp16 ``prod`` (AMP) whose
    backward casts the small gradient before broadcasting it. Autograd's own
    backward of a sum with ``dtype`` broadcasts first and then casts: a
    full-size copy of the gradient, one full-size pass more
    (tests/models/layers/test_attention_cost.py counts it)."""

    @staticmethod
    def forward(ctx, prod, acc):
        ctx.shape, ctx.dtype = prod.shape, prod.dtype
        return prod.sum((3, 4), dtype=acc)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype)[..., None, None].expand(ctx.shape), None


#: ``torch.compiler.is_compiling`` (torch >= 2.3) or its older name.
_dynamo_compiling = getattr(getattr(torch, 'compiler', None), 'is_compiling',
                            None) or torch._dynamo.is_compiling


def in_graph_capture() -> bool:
    """Whether the forward is being recorded as a graph: ``torch.jit.trace``
    (FLOP counting, the TorchScript ONNX exporter) or ``torch.compile`` /
    ``torch.export`` (the dynamo ONNX exporter). A Python-side cache would
    freeze one input size into such a graph, so the filters are then
    computed in the graph from the input's shape."""
    return torch.jit.is_tracing() or _dynamo_compiling()


#: Most input sizes whose filters are kept (shared by all layers).
FILTER_CACHE_SIZE = 64
_filter_cache: 'OrderedDict[tuple, torch.Tensor]' = OrderedDict()


def group_filters(grid_freqs, dct_h, dct_w, h, w, normalization, sizes,
                  dtype, device) -> torch.Tensor:
    """:func:`~mmfca.models.layers.dct.pooled_dct_filters` shaped for
    :func:`multi_spectral_squeeze`: (G, 1, h, w), or (C, 1, h, w) repeated
    per channel group when the group ``sizes`` differ (see
    :func:`~mmfca.models.layers.dct.channel_groups`)."""
    filters = pooled_dct_filters(grid_freqs, dct_h, dct_w, h, w,
                                 normalization, dtype, device)
    if len(set(sizes)) > 1:
        filters = filters.repeat_interleave(
            torch.tensor(sizes, device=device), dim=0)
    return filters[:, None]


def cached_group_filters(key, h, w, dtype, device, *args) -> torch.Tensor:
    """:func:`group_filters` (``*args`` without the size, dtype and
    device) computed once in float64 per ``(key, h, w, dtype, device)``
    and kept in ``dtype`` (LRU, shared by all layers)."""
    full_key = (key, h, w, dtype, device)
    filters = _filter_cache.get(full_key)
    if filters is None:
        grid_freqs, dct_h, dct_w, normalization, sizes = args
        filters = group_filters(grid_freqs, dct_h, dct_w, h, w,
                                normalization, sizes,
                                torch.float64, None).to(
                                    device, dtype).contiguous()
        _filter_cache[full_key] = filters
        if len(_filter_cache) > FILTER_CACHE_SIZE:
            _filter_cache.popitem(last=False)
    else:
        _filter_cache.move_to_end(full_key)
    return filters


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
      first adaptively average pooled to the filter size, as in the release
      (the pooling is folded into the filter, see
      :func:`~mmfca.models.layers.dct.pooled_dct_filters`); 7x7-grid
      frequencies are scaled by ``dct_h // 7``. ``weight`` holds the
      per-channel filter bank with the release's layout
      (``C x dct_h x dct_w``, saved as ``dct_layer.weight``).
    * ``dct_h = dct_w = None``: the filter follows each input's own size (no
      pooling, frequencies scaled in proportion, see
      :func:`~mmfca.models.layers.dct.scale_freqs_to_input`); nothing is
      stored. On a 224x224 network's 56/28/14/7 maps this is FcaNet's rule.

    Channels are split into one group per frequency, equal as in the release
    when the count divides, else as equal as possible (see
    :func:`~mmfca.models.layers.dct.channel_groups`).

    The fixed DCT's filters are computed once per input size and cached;
    the ablation's learnable or random filters are pooled from ``weight`` at
    each call (with autograd).

    Args:
        in_channels (int): Number of input channels.
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
        learnable_filter (bool): Make the filter a trainable parameter
            instead of a fixed buffer (ablation; needs a fixed size).
            Defaults to False.
        filter_init (str): ``'dct'`` (the paper) or ``'random'`` (the
            ablation's random initialisation). Defaults to ``'dct'``.
        keepdim (bool): Return (N, C, 1, 1), like
            ``nn.AdaptiveAvgPool2d(1)``, instead of (N, C). Defaults to
            False.
    """

    def __init__(self,
                 in_channels: int,
                 dct_h: Optional[int] = 7,
                 dct_w: Optional[int] = 7,
                 freq_sel_method: FreqSel = 'top16',
                 normalization: str = 'ortho',
                 learnable_filter: bool = False,
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
        self.group_sizes = tuple(
            channel_groups(in_channels, len(self.grid_freqs)))
        self.in_channels = in_channels
        self.dct_h, self.dct_w = dct_h, dct_w
        self.normalization = normalization
        self.learnable_filter = learnable_filter
        self.filter_init = filter_init
        self.keepdim = keepdim
        # what the fixed DCT's filters depend on besides the input
        self._filter_args = (self.grid_freqs, dct_h, dct_w, normalization,
                             self.group_sizes)
        self._cache_key = (self._filter_args if len(set(self.group_sizes)) > 1
                           else self._filter_args[:4])
        if dct_h is None and dct_w is None:
            if learnable_filter or filter_init != 'dct':
                raise ValueError(
                    'A filter that follows the input size (dct_h=dct_w=None) '
                    'is the fixed DCT; learnable_filter=True or filter_init='
                    f'{filter_init!r} need a fixed dct_h and dct_w (>= 7).')
            self.freqs = None  # per input size
            return
        check_filter_size(dct_h, dct_w)
        self.freqs = tuple(scale_freqs(self.grid_freqs, dct_h, dct_w))
        if filter_init == 'dct':
            weight = channel_dct_filters(in_channels, dct_h, dct_w,
                                         self.freqs)
        else:
            weight = torch.randn(in_channels, dct_h, dct_w,
                                 dtype=torch.float64)
            weight = weight / weight.flatten(1).norm(dim=1).view(-1, 1, 1)
        weight = (weight *
                  normalization_gain(normalization, dct_h, dct_w)).float()
        if learnable_filter:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer('weight', weight)

    @property
    def fixed_dct(self) -> bool:
        """Whether the filter is the fixed DCT (computed, not read from
        ``weight``)."""
        return not self.learnable_filter and self.filter_init == 'dct'

    @property
    def follows_input(self) -> bool:
        """Whether the filter takes each input's size (``dct_h=None``)."""
        return self.dct_h is None

    def extra_repr(self):
        size = 'input' if self.follows_input else (self.dct_h, self.dct_w)
        return (f'in_channels={self.in_channels}, dct={size}, '
                f'freqs={list(self.grid_freqs)} (7x7 grid), normalization='
                f'{self.normalization!r}, learnable_filter='
                f'{self.learnable_filter}, filter_init={self.filter_init!r}')

    def filters(self, x: torch.Tensor, graph: bool = False) -> torch.Tensor:
        """The filters applied to ``x`` (pooling folded in), in ``x``'s
        dtype: (G, 1, H, W) for the fixed DCT with equal groups, else
        (C, 1, H, W) (see :func:`multi_spectral_squeeze`).

        The fixed DCT's come from the cache, or are computed in the graph
        while one is captured (``graph``); the ablation's are pooled from
        ``weight`` (with autograd).
        """
        h, w = x.shape[2], x.shape[3]
        if not self.fixed_dct:
            pool_h = adaptive_pool_matrix(h, self.dct_h, self.weight.dtype,
                                          x.device)
            pool_w = adaptive_pool_matrix(w, self.dct_w, self.weight.dtype,
                                          x.device)
            return torch.einsum('ai,cab,bj->cij', pool_h, self.weight,
                                pool_w)[:, None].to(x.dtype)
        if graph:
            return group_filters(*self._filter_args[:3], h, w,
                                 *self._filter_args[3:], torch.float32,
                                 x.device)
        return cached_group_filters(self._cache_key, h, w, x.dtype, x.device,
                                    *self._filter_args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze ``x`` of shape (N, C, H, W) to (N, C) (or (N, C, 1, 1)
        with ``keepdim``), in float32 or float64 for a float64 input."""
        self.check_input(x)
        graph = in_graph_capture()
        y = multi_spectral_squeeze(x, self.filters(x, graph),
                                   squeeze_form(x, graph))
        return y.view(*y.shape, 1, 1) if self.keepdim else y

    def check_input(self, x: torch.Tensor):
        """Raise a ValueError naming the problem unless ``x`` is
        (N, in_channels, H, W)."""
        if x.dim() == 4 and x.shape[1] == self.in_channels:
            return
        if x.dim() != 4:
            raise ValueError(
                f'{type(self).__name__} expects a 4D (N, C, H, W) input, got '
                f'a {x.dim()}D tensor of shape {tuple(x.shape)}.')
        raise ValueError(
            f'{type(self).__name__} was built for in_channels='
            f'{self.in_channels}, got an input with {x.shape[1]} channels '
            f'(shape {tuple(x.shape)}).')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fixed DCT is computed, not read from ``weight``, so a fixed
        # filter read from a checkpoint must be that DCT (released weights
        # are).
        key = prefix + 'weight'
        if self.fixed_dct and not self.follows_input and key in state_dict:
            loaded = state_dict[key]
            if loaded.shape == self.weight.shape and not torch.allclose(
                    loaded.double(), self.weight.double(), atol=1e-5):
                err = (loaded.double() - self.weight.double()).abs().max()
                raise ValueError(
                    f'{key} is not the fixed DCT filter of frequencies '
                    f'{list(self.freqs)} on {self.dct_h}x{self.dct_w} '
                    f'({self.normalization}; max difference {err:.3g}); '
                    f'build the layer with the checkpoint\'s freq_sel_method,'
                    f' or with learnable_filter=True or filter_init="random" '
                    f'for a non-DCT filter.')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
