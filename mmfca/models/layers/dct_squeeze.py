# Copyright (c) mmfca contributors. All rights reserved.
"""The multi-spectral squeeze: channel group ``k`` is compressed with 2D DCT
frequency ``k`` instead of global average pooling (GAP, the (0, 0) term).

:class:`MultiSpectralDCT` is FCA's squeeze (the FCA layer's ``dct_layer``)
and, with ``keepdim=True``, a drop-in replacement for the
``nn.AdaptiveAvgPool2d(1)`` of any channel attention
(:mod:`mmfca.models.layers.squeeze_switch`).
"""
import functools
from typing import Optional

import torch
import torch.nn as nn
from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import elementwise_flop_counter
from mmengine.registry import MODELS

from mmfca.utils.graph_capture import in_graph_capture
from .dct import (NORMALIZATIONS, FreqSel, channel_groups, check_filter_size,
                  fca_filters, fold_pooling, get_freq_indices,
                  normalization_gain, scale_freqs)

#: Filter variants of the authors' ablation (``filter_init``).
FILTER_INITS = ('dct', 'random')

# mmengine's FLOP counter (``get_model_complexity_info``, ``FlopAnalyzer``)
# counts GAP (``adaptive_avg_pool2d``) as one operation per input element
# and skips sums and products; the squeeze's sum is GAP's counterpart, so it
# is counted alike: an FCA model counts SE's FLOPs (a handle of one's own,
# or mmengine's, wins)
complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(
    'aten::sum', elementwise_flop_counter(1, 0))


@MODELS.register_module()
class MultiSpectralDCT(nn.Module):
    """The multi-spectral squeeze of FCA: channel ``c`` of group ``k`` is
    compressed with the 2D DCT frequency ``k``,
    ``y_c = sum_ij x_c(i, j) * B[u_k, v_k](i, j)``.

    With frequency (0, 0) alone it is GAP up to a constant: the orthonormal
    (0, 0) term is ``GAP * sqrt(H * W)`` (the paper's theorem), and with
    ``normalization='mean'`` it is GAP exactly. The sum is taken in float32
    (float64 for float64 inputs), so a float16 input cannot overflow it.

    Filter size, two rules:

    * ``dct_h, dct_w`` given (FcaNet's rule): an input of another size is
      adaptively average pooled to the filter size first, as in the release
      (the pooling is folded into the filter, see
      :func:`~mmfca.models.layers.dct.fold_pooling`); 7x7-grid frequencies
      are scaled by ``dct_h // 7``. ``weight`` holds the per-channel filter
      bank with the release's layout (``C x dct_h x dct_w``).
    * ``dct_h = dct_w = None``: the filter follows each input's own size (no
      pooling, frequencies scaled in proportion, see
      :func:`~mmfca.models.layers.dct.scale_freqs_to_input`); nothing is
      stored. On a 224x224 network's 56/28/14/7 maps this is FcaNet's rule.

    Channels are split into one group per frequency, equal as in the release
    when the count divides, else as equal as possible (see
    :func:`~mmfca.models.layers.dct.channel_groups`).

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
        self.fixed_dct = not learnable_filter and filter_init == 'dct'
        if dct_h is None and dct_w is None:
            if not self.fixed_dct:
                raise ValueError(
                    'A filter that follows the input size (dct_h=dct_w=None) '
                    'is the fixed DCT; learnable_filter=True or filter_init='
                    f'{filter_init!r} need a fixed dct_h and dct_w (>= 7).')
            self.freqs = None  # per input size
        else:
            check_filter_size(dct_h, dct_w)
            self.freqs = tuple(scale_freqs(self.grid_freqs, dct_h, dct_w))
            self._init_weight(in_channels)
        # what the fixed DCT's filters depend on besides the input; equal
        # groups share one filter per frequency (broadcast over the group)
        self._filter_spec = (self.grid_freqs, self.dct_size, normalization,
                             None if len(set(self.group_sizes)) == 1 else
                             self.group_sizes)

    @property
    def dct_size(self):
        """``(dct_h, dct_w)``, or None when the filter follows the input."""
        return None if self.dct_h is None else (self.dct_h, self.dct_w)

    def _init_weight(self, in_channels):
        if self.filter_init == 'dct':
            weight = fca_filters(self.grid_freqs, self.dct_size, self.dct_size,
                                 self.normalization, self.group_sizes)
        else:
            weight = torch.randn(in_channels, self.dct_h, self.dct_w,
                                 dtype=torch.float64)
            weight = weight / weight.flatten(1).norm(dim=1).view(-1, 1, 1) \
                * normalization_gain(self.normalization, *self.dct_size)
        if self.learnable_filter:
            self.weight = nn.Parameter(weight.float())
        else:
            self.register_buffer('weight', weight.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y[n, c] = sum_ij x[n, c, i, j] * filter_c(i, j)``: (N, C, H, W)
        to (N, C), or (N, C, 1, 1) with ``keepdim``; float32, float64 for a
        float64 input."""
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

    def filters(self, x: torch.Tensor) -> torch.Tensor:
        """The filters applied to ``x`` (pooling folded in), in ``x``'s
        dtype: (G, 1, H, W) for the fixed DCT with equal groups, else
        (C, 1, H, W).

        The fixed DCT's are computed once per input size and kept
        (:func:`cached_filters`), or computed in the graph from the input's
        shape while one is captured (a kept tensor would freeze one input
        size into it); the ablation's are pooled from ``weight`` (with
        autograd)."""
        h, w = x.shape[2], x.shape[3]
        if not self.fixed_dct:
            return fold_pooling(self.weight, h, w)[:, None].to(x.dtype)
        if in_graph_capture():
            return graph_filters(self._filter_spec, h, w, x.dtype, x.device)
        return cached_filters(self._filter_spec, h, w, x.dtype, x.device)

    def check_input(self, x: torch.Tensor) -> torch.Size:
        """``x``'s shape; a ValueError naming the problem unless ``x`` is
        (N, in_channels, H, W)."""
        shape = x.shape
        if len(shape) == 4 and shape[1] == self.in_channels:
            return shape
        if len(shape) != 4:
            raise ValueError(
                f'{type(self).__name__} expects a 4D (N, C, H, W) input, got '
                f'a {x.dim()}D tensor of shape {tuple(shape)}.')
        raise ValueError(
            f'{type(self).__name__} was built for in_channels='
            f'{self.in_channels}, got an input with {shape[1]} channels '
            f'(shape {tuple(shape)}).')

    def extra_repr(self):
        size = 'input' if self.dct_h is None else (self.dct_h, self.dct_w)
        return (f'in_channels={self.in_channels}, dct={size}, '
                f'freqs={list(self.grid_freqs)} (7x7 grid), normalization='
                f'{self.normalization!r}, learnable_filter='
                f'{self.learnable_filter}, filter_init={self.filter_init!r}')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fixed DCT is computed, not read from ``weight``, so a fixed
        # filter read from a checkpoint must be that DCT (released weights
        # are).
        key = prefix + 'weight'
        if self.fixed_dct and self.freqs is not None and key in state_dict:
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


#: Most (filter, input size, dtype, device) combinations kept by
#: :func:`cached_filters`, shared by all layers.
FILTER_CACHE_SIZE = 64


def graph_filters(spec, h, w, dtype, device, precision=torch.float32):
    """:func:`~mmfca.models.layers.dct.fca_filters` of ``spec`` (grid
    frequencies, filter size, normalization, group sizes) for an ``h x w``
    input, computed in ``precision``, shaped (G, 1, h, w) in ``dtype``
    (tensor ops only: ``h`` and ``w`` may be traced sizes)."""
    grid_freqs, dct_size, normalization, group_sizes = spec
    return fca_filters(grid_freqs, dct_size, (h, w), normalization,
                       group_sizes, precision, device)[:, None].to(dtype)


@functools.lru_cache(maxsize=FILTER_CACHE_SIZE)
def cached_filters(spec, h, w, dtype, device) -> torch.Tensor:
    """:func:`graph_filters` computed once in float64 per ``(spec, h, w,
    dtype, device)`` and kept (least recently used dropped)."""
    return graph_filters(spec, h, w, dtype, device, torch.float64)


class _LowPrecisionSum(torch.autograd.Function):
    """``prod.sum((3, 4), dtype=acc)`` of a bfloat16/float16 ``prod`` (AMP,
    half models) whose backward casts the small (N, G, C/G) gradient before
    broadcasting it. Autograd's own backward of a sum with ``dtype``
    broadcasts first and then casts: a full-size float32 gradient and one
    full-size pass more (pinned by
    ``tests/models/layers/test_attention_cost.py``)."""

    @staticmethod
    def forward(ctx, prod, acc):
        ctx.shape, ctx.dtype = prod.shape, prod.dtype
        return prod.sum((3, 4), dtype=acc)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype)[..., None, None].expand(ctx.shape), None
