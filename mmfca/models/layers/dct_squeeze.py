# Copyright (c) mmfca contributors. All rights reserved.
"""The multi-spectral squeeze: channel group ``k`` is compressed with 2D DCT
frequency ``k`` instead of global average pooling (GAP, the (0, 0) term).

:class:`MultiSpectralSqueeze` is FCA's squeeze (the FCA layer's
``dct_layer``) and, with ``keepdim=True``, a drop-in replacement for the
``nn.AdaptiveAvgPool2d(1)`` of any channel attention
(:mod:`mmfca.models.layers.squeeze_switch`). :class:`AblationSqueeze`
stands beside it: the same sum with the filters of the authors' ablation
(stored, learnable, randomly initialised). Both compute
:class:`FilterSqueeze`'s formula and differ only in where the filters come
from.
"""
import functools
from typing import Optional

import torch
import torch.nn as nn
from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import elementwise_flop_counter
from mmengine.registry import MODELS

from mmfca.utils.graph_capture import in_graph_capture
from .dct import (NORMALIZATIONS, FreqSelMethod, channel_groups,
                  check_filter_size, fca_filters, get_grid_freqs,
                  normalization_gain, pooled_filters, scale_freqs)

# mmengine's FLOP counter (``get_model_complexity_info``, ``FlopAnalyzer``)
# counts GAP (``adaptive_avg_pool2d``) as one operation per input element
# and skips sums and products; the squeeze's sum is GAP's counterpart, so it
# is counted alike: an FCA model counts SE's FLOPs (a handle of one's own,
# or mmengine's, wins)
complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(
    'aten::sum', elementwise_flop_counter(1, 0))


class FilterSqueeze(nn.Module):
    """``y[n, c] = sum_ij x[n, c, i, j] * filter_c(i, j)``, the squeeze of
    both filter kinds; subclasses say where the filters come from
    (:meth:`filters`). Channels are split into one group per frequency,
    equal as in the release when the count divides, else as equal as
    possible (:func:`~mmfca.models.layers.dct.channel_groups`). The sum is
    taken in float32 (float64 for float64 inputs), so a float16 input
    cannot overflow it. Subclasses define ``filters(x)``: the filters for
    ``x``, (G, 1, H, W) in ``x``'s dtype, G dividing C (one filter
    broadcast over each group of C / G).

    Args:
        in_channels (int): Number of input channels.
        dct_h (int, optional): Filter height (>= 7), or None to follow the
            input.
        dct_w (int, optional): Filter width (>= 7), or None with ``dct_h``.
        freq_sel_method (str | list): ``'top16'``, any of ``top|low|bot`` x
            ``1,2,4,8,16,32``, or an explicit list of (u, v) pairs on the
            7x7 grid.
        normalization (str): ``'ortho'`` (the release's orthonormal DCT,
            for FcaNet's weights) or ``'mean'`` (filters divided by
            ``sqrt(dct_h * dct_w)``: the (0, 0) term is exactly the mean, so
            a trained GAP module keeps working).
        keepdim (bool): Return (N, C, 1, 1), like
            ``nn.AdaptiveAvgPool2d(1)``, instead of (N, C).
    """

    def __init__(self, in_channels: int, dct_h: Optional[int],
                 dct_w: Optional[int], freq_sel_method: FreqSelMethod,
                 normalization: str, keepdim: bool):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f'Unknown normalization {normalization!r}; '
                             f'allowed: {NORMALIZATIONS}.')
        self.grid_freqs = tuple(get_grid_freqs(freq_sel_method))
        self.group_sizes = tuple(
            channel_groups(in_channels, len(self.grid_freqs)))
        self.in_channels, self.keepdim = in_channels, keepdim
        self.normalization = normalization
        self.dct_h, self.dct_w = dct_h, dct_w
        #: ``(dct_h, dct_w)``, or None when the filters follow the input
        self.dct_size = self.freqs = None  # and their filter pairs
        if dct_h is not None or dct_w is not None:
            check_filter_size(dct_h, dct_w)
            self.dct_size = (dct_h, dct_w)
            self.freqs = tuple(scale_freqs(self.grid_freqs, dct_h, dct_w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) to (N, C), or (N, C, 1, 1) with ``keepdim``;
        float32, float64 for a float64 input."""
        n, c, h, w = self.check_input(x)
        filters = self.filters(x)  # (G, 1, H, W), G divides C
        groups = filters.shape[0]
        prod = x.view(n, groups, c // groups, h, w) * filters
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        if prod.dtype != acc and prod.requires_grad:
            y = _LowPrecisionSum.apply(prod, acc)
        else:
            y = prod.sum((3, 4), dtype=acc)
        return y.view(n, c, 1, 1) if self.keepdim else y.view(n, c)

    def check_input(self, x: torch.Tensor) -> torch.Size:
        """``x``'s shape; a ValueError naming the problem unless ``x`` is
        (N, in_channels, H, W)."""
        shape = x.shape
        if len(shape) == 4 and shape[1] == self.in_channels:
            return shape
        got = (f'a {x.dim()}D tensor' if len(shape) != 4 else
               f'an input with {shape[1]} channels')
        raise ValueError(
            f'{type(self).__name__} expects a 4D (N, C, H, W) input with '
            f'in_channels={self.in_channels}, got {got} (shape '
            f'{tuple(shape)}).')

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, '
                f'dct={self.dct_size or "input"}, '
                f'grid_freqs={list(self.grid_freqs)}, normalization='
                f'{self.normalization!r}')


@MODELS.register_module()
class MultiSpectralSqueeze(FilterSqueeze):
    """The multi-spectral squeeze of FCA: channel ``c`` of group ``k`` is
    compressed with the fixed 2D DCT frequency ``k``,
    ``y_c = sum_ij x_c(i, j) * B[u_k, v_k](i, j)``.

    With frequency (0, 0) alone it is GAP up to a constant: the orthonormal
    (0, 0) term is ``GAP * sqrt(H * W)`` (the paper's theorem), and with
    ``normalization='mean'`` it is GAP exactly.

    Filter size, two rules:

    * ``dct_h, dct_w`` given (FcaNet's rule): an input of another size is
      adaptively average pooled to the filter size first, as in the release
      (the pooling is folded into the filters, see
      :func:`~mmfca.models.layers.dct.pooled_filters`); 7x7-grid
      frequencies are scaled by ``dct_h // 7``. ``weight`` holds the
      per-channel filters with the release's layout (``C x dct_h x
      dct_w``).
    * ``dct_h = dct_w = None``: the filters follow each input's own size (no
      pooling, frequencies scaled in proportion, see
      :func:`~mmfca.models.layers.dct.scale_freqs`); nothing is stored. On
      a 224x224 network's 56/28/14/7 maps this is FcaNet's rule.

    The filters are computed rather than read from ``weight``: once per
    input size (kept, shared by all layers), or from the input's shape
    while a graph is captured (ONNX export with dynamic shapes,
    ``torch.compile``, ``jit.trace``).

    Args:
        in_channels (int): Number of input channels.
        dct_h (int, optional): Filter height (>= 7), or None to follow the
            input. Defaults to 7.
        dct_w (int, optional): Filter width (>= 7), or None with ``dct_h``.
            Defaults to 7.
        freq_sel_method (str | list): See :class:`FilterSqueeze`. Defaults
            to ``'top16'``.
        normalization (str): ``'ortho'`` or ``'mean'``, see
            :class:`FilterSqueeze`. Defaults to ``'ortho'``.
        keepdim (bool): Return (N, C, 1, 1). Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 dct_h: Optional[int] = 7,
                 dct_w: Optional[int] = 7,
                 freq_sel_method: FreqSelMethod = 'top16',
                 normalization: str = 'ortho',
                 keepdim: bool = False):
        super().__init__(in_channels, dct_h, dct_w, freq_sel_method,
                         normalization, keepdim)
        if self.freqs is not None:  # the release's buffer
            self.register_buffer('weight', fca_filters(
                self.grid_freqs, self.dct_size, self.dct_size,
                normalization, self.group_sizes).float())
        # what the filters depend on besides the input (the cache's key);
        # equal groups share one filter per frequency
        self._filters_key = (self.grid_freqs, self.dct_size, normalization,
                             None if len(set(self.group_sizes)) == 1 else
                             self.group_sizes)

    def filters(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed DCT for ``x``'s size (pooling folded in)."""
        h, w = x.shape[2], x.shape[3]
        if in_graph_capture():  # a kept tensor would freeze one size in
            return squeeze_filters(self._filters_key, h, w, x.dtype,
                                   x.device, torch.float32)
        return cached_fca_filters(self._filters_key, h, w, x.dtype, x.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fixed DCT is computed, not read from ``weight``, so filters
        # read from a checkpoint must be that DCT (released weights are).
        key = prefix + 'weight'
        if self.freqs is not None and key in state_dict:
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
                    f'for other filters (AblationSqueeze).')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# 0.1.0's name of the squeeze, kept for its configs
MODELS.register_module('MultiSpectralDCT', module=MultiSpectralSqueeze)

#: Filter variants of the authors' ablation (``filter_init``).
FILTER_INITS = ('dct', 'random')


@MODELS.register_module()
class AblationSqueeze(FilterSqueeze):
    """The squeeze with the filters of the authors' ablation: stored in
    ``weight`` (the release's layout, any filters load) and used from
    there, initialised with the DCT or at random, fixed or learnable
    (FcaNet's ablation: learnable DCT 78.352, learnable random 77.914,
    fixed random 77.742 top-1, against the fixed DCT's 78.574, which is
    :class:`MultiSpectralSqueeze`).
    :class:`~mmfca.models.layers.MultiSpectralAttention` builds this class
    when ``learnable_filter`` or ``filter_init`` ask for it.

    Args:
        in_channels (int): Number of input channels.
        dct_h (int): Filter height (>= 7); inputs of another size are
            adaptively average pooled to it. Defaults to 7.
        dct_w (int): Filter width (>= 7). Defaults to 7.
        freq_sel_method (str | list): The frequencies of the DCT
            initialisation, and the number of channel groups. Defaults to
            ``'top16'``.
        normalization (str): ``'ortho'`` or ``'mean'``, see
            :class:`FilterSqueeze` (random filters are scaled to the DCT
            filters' norm). Defaults to ``'ortho'``.
        learnable_filter (bool): Make the filters a trainable parameter
            instead of a fixed buffer. Defaults to False.
        filter_init (str): ``'dct'`` (the paper's filters) or ``'random'``
            (unit-norm Gaussian filters, one per channel). Defaults to
            ``'dct'``.
        keepdim (bool): Return (N, C, 1, 1). Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 dct_h: int = 7,
                 dct_w: int = 7,
                 freq_sel_method: FreqSelMethod = 'top16',
                 normalization: str = 'ortho',
                 learnable_filter: bool = False,
                 filter_init: str = 'dct',
                 keepdim: bool = False):
        if filter_init not in FILTER_INITS:
            raise ValueError(f'Unknown filter_init {filter_init!r}; allowed: '
                             f'{FILTER_INITS}.')
        if dct_h is None or dct_w is None:
            raise ValueError(
                f'dct_h={dct_h!r}, dct_w={dct_w!r}: the ablation\'s filters '
                f'(learnable_filter=True or filter_init={filter_init!r}) '
                'need a fixed dct_h and dct_w (>= 7); filters that follow '
                'the input size are the fixed DCT.')
        super().__init__(in_channels, dct_h, dct_w, freq_sel_method,
                         normalization, keepdim)
        self.learnable_filter, self.filter_init = learnable_filter, filter_init
        weight = fca_filters(self.grid_freqs, self.dct_size, self.dct_size,
                             normalization, self.group_sizes)
        if filter_init == 'random':
            weight = torch.randn(weight.shape, dtype=torch.float64)
            weight = weight / weight.flatten(1).norm(dim=1).view(-1, 1, 1) \
                * normalization_gain(normalization, dct_h, dct_w)
        if learnable_filter:
            self.weight = nn.Parameter(weight.float())
        else:
            self.register_buffer('weight', weight.float())

    def filters(self, x: torch.Tensor) -> torch.Tensor:
        """``weight`` pooled to ``x``'s size (with autograd), (C, 1, H, W)
        in ``x``'s dtype."""
        return pooled_filters(self.weight, x.shape[2],
                              x.shape[3])[:, None].to(x.dtype)

    def extra_repr(self):
        return (f'{super().extra_repr()}, learnable_filter='
                f'{self.learnable_filter}, filter_init={self.filter_init!r}')


def squeeze_filters(key, h, w, dtype, device,
                    acc=torch.float64) -> torch.Tensor:
    """:func:`~mmfca.models.layers.dct.fca_filters` of ``key`` (grid
    frequencies, filter size, normalization, group sizes) for an ``h x w``
    input, computed in ``acc``, shaped (G, 1, h, w) in ``dtype``."""
    grid_freqs, dct_size, normalization, group_sizes = key
    return fca_filters(grid_freqs, dct_size, (h, w), normalization,
                       group_sizes, acc, device)[:, None].to(dtype)


#: Most (filters, input size, dtype, device) combinations kept by
#: :func:`cached_fca_filters`, shared by all layers.
FILTER_CACHE_SIZE = 64

#: :func:`squeeze_filters` in float64, computed once per ``(key, h, w,
#: dtype, device)`` and kept (least recently used dropped).
cached_fca_filters = functools.lru_cache(maxsize=FILTER_CACHE_SIZE)(
    squeeze_filters)


class _LowPrecisionSum(torch.autograd.Function):
    """``prod.sum((3, 4), dtype=acc)`` of a bfloat16/float16 ``prod`` (AMP,
    half models) whose backward casts the small (N, G, C/G) gradient before
    broadcasting it. Autograd's own backward of a sum with ``dtype``
    broadcasts first and then casts: a full-size float32 gradient and one
    full-size pass more (pinned by
    ``tests/models/layers/test_precision_cost.py``)."""

    @staticmethod
    def forward(ctx, prod, acc):
        ctx.shape, ctx.dtype = prod.shape, prod.dtype
        return prod.sum((3, 4), dtype=acc)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype)[..., None, None].expand(ctx.shape), None
