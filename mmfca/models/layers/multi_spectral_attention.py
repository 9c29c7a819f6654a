# Copyright (c) mmfca contributors. All rights reserved.
"""Multi-spectral channel attention (the FCA layer of FcaNet)."""
from collections import OrderedDict
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from .dct import (FreqSel, adaptive_pool_matrix, channel_dct_filters,
                  check_channels_divisible, check_filter_size, dct_basis_1d,
                  get_freq_indices, scale_freqs)

#: Filter variants of the authors' ablation (``filter_init``).
FILTER_INITS = ('dct', 'random')


#: Most input sizes whose folded filters are kept (shared by all layers).
FILTER_CACHE_SIZE = 64
_filter_cache: 'OrderedDict[tuple, Tuple[torch.Tensor, ...]]' = OrderedDict()

#: Maps of at most this many pixels are squeezed with one dot product per
#: channel; larger ones row by row (shorter float sums, and faster there).
ONE_DOT_MAX_PIXELS = 256


def pooled_dct_factors(dct_h, dct_w, freqs, h, w, dtype, device):
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

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``rows`` (n, h), ``cols`` (n, w) and
        ``scale`` (1, n, 1) in :func:`accumulation_dtype` of ``dtype``
        (float64 stays float64). Cached (LRU, shared by all layers).
    """
    key = (dct_h, dct_w, tuple(freqs), h, w, dtype, str(device))
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
    entry = ((rows / row_l1[:, None]).to(device, dtype),
             (cols / col_l1[:, None]).to(device, dtype),
             (row_l1 * col_l1).view(1, -1, 1).to(device,
                                                 accumulation_dtype(dtype)))
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


class _FusedFCA(torch.autograd.Function):
    """The whole FCA layer for training with the fixed DCT filter.

    Same math as the module path (squeeze, excitation on the normalised
    squeeze, scale), with a backward that writes the input gradient once:
    ``grad_out * att``, then the squeeze's part added in place. Autograd
    would materialise that part and add it (one more full-size pass); SE's
    pooling gradient is a broadcast view and needs none. The gradient
    through the per-sample normaliser ``s`` is exactly 0, since
    ``s * f(y / s) = f(y)`` for the positively homogeneous excitation
    ``f = fc2 . relu . fc1``.
    """

    @staticmethod
    def forward(ctx, x, w1, w2, rows, cols, scale):
        n, c = x.shape[:2]
        with torch.autocast(x.device.type, enabled=False):
            y = dct_squeeze(x, rows, cols, scale)
            s = y.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
            u = (y / s).to(w1.dtype)
            hidden = torch.relu(u @ w1.t())
            att = torch.sigmoid((hidden @ w2.t()).to(y.dtype) * s)
        ctx.save_for_backward(x, w1, w2, rows, cols, scale, u, hidden, att,
                              s)
        return x * att.to(x.dtype).view(n, c, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        x, w1, w2, rows, cols, scale, u, hidden, att, s = ctx.saved_tensors
        n, c, h, w = x.shape
        groups = rows.shape[0]
        wide = att.dtype
        grad_att = (grad_out * x).sum((2, 3)).to(wide)
        grad_z = grad_att * att * (1 - att) * s
        grad_w2 = grad_z.t() @ hidden.to(wide)
        grad_pre = (grad_z @ w2.to(wide)) * (hidden > 0)
        grad_w1 = grad_pre.t() @ u.to(wide)
        grad_y = (grad_pre @ w1.to(wide)) / s
        grad_y = grad_y.view(n, groups, c // groups) * scale.to(wide)
        # contiguous (N, C, H, W) so that the groups can be viewed
        grad_x = grad_out.contiguous() * att.to(grad_out.dtype).view(
            n, c, 1, 1)
        filters = _outer(rows, cols).view(1, groups, 1, h * w).to(
            grad_x.dtype)
        grad_x.view(n, groups, c // groups, h * w).addcmul_(
            grad_y.view(n, groups, c // groups, 1).to(grad_x.dtype), filters)
        return (grad_x, grad_w1.to(w1.dtype), grad_w2.to(w2.dtype), None,
                None, None)


class MultiSpectralDCT(nn.Module):
    """The squeeze of FCA: channel group ``k`` is compressed with the 2D DCT
    frequency ``k``, ``y_c = sum_ij x_c(i, j) * filter_c(i, j)``.

    ``weight`` holds the per-channel filter bank with the release's layout
    (``C x dct_h x dct_w``, saved as ``dct_layer.weight``). An input whose
    spatial size differs from the filter's is first adaptively average
    pooled to the filter size, as in the release. Pooling is linear, so for
    the fixed DCT filter it is folded into the filter's separable factors,
    cached per input size, and the squeeze reads the input once, as SE's
    average pooling does (see :func:`group_dot`).

    Args:
        channels (int): Number of input channels.
        dct_h (int): Filter height (>= 7).
        dct_w (int): Filter width (>= 7).
        freqs (list[tuple[int, int]]): Frequencies in filter coordinates,
            one per channel group.
        learnable (bool): Make the filter a trainable parameter instead of a
            fixed buffer. Defaults to False (the paper's method).
        filter_init (str): ``'dct'`` (the paper) or ``'random'``
            (the ablation's random initialisation). Defaults to ``'dct'``.
    """

    def __init__(self, channels, dct_h, dct_w, freqs, learnable=False,
                 filter_init='dct'):
        super().__init__()
        if filter_init not in FILTER_INITS:
            raise ValueError(f'Unknown filter_init {filter_init!r}; allowed: '
                             f'{FILTER_INITS}.')
        self.channels = channels
        self.dct_h, self.dct_w = dct_h, dct_w
        self.freqs = tuple(freqs)
        self.learnable = learnable
        self.filter_init = filter_init
        if filter_init == 'dct':
            weight = channel_dct_filters(channels, dct_h, dct_w, self.freqs)
        else:
            weight = torch.randn(channels, dct_h, dct_w, dtype=torch.float64)
            weight = weight / weight.flatten(1).norm(dim=1).view(-1, 1, 1)
        weight = weight.float()
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer('weight', weight)

    @property
    def separable(self) -> bool:
        """Whether the filter is the fixed DCT (the fast path applies)."""
        return not self.learnable and self.filter_init == 'dct'

    def extra_repr(self):
        return (f'channels={self.channels}, dct=({self.dct_h}, {self.dct_w}), '
                f'freqs={list(self.freqs)}, learnable={self.learnable}, '
                f'filter_init={self.filter_init!r}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze ``x`` of shape (N, C, H, W) to (N, C), in float32 or the
        input's dtype if wider.

        With the fixed DCT filter (the fast path), low-precision products
        run on factors of unit L1 norm (no overflow for any input that fits
        the dtype) and the scale is applied afterwards in float32. The
        ablation's learnable or random filters take the general path: the
        pooling folded into the per-channel filter, one batched product.
        """
        n, c, h, w = x.shape
        if self.separable:
            return self._separable_squeeze(x)
        pool_h = adaptive_pool_matrix(h, self.dct_h).to(self.weight)
        pool_w = adaptive_pool_matrix(w, self.dct_w).to(self.weight)
        folded = torch.einsum('ah,cab,bw->chw', pool_h, self.weight, pool_w)
        # (C, N, HW) @ (C, HW, 1): a batched dot product over channels.
        y = torch.bmm(
            x.reshape(n, c, h * w).transpose(0, 1),
            folded.reshape(c, h * w, 1).to(x.dtype))
        return y.view(c, n).t()

    def _separable_squeeze(self, x):
        return dct_squeeze(x, *pooled_dct_factors(
            self.dct_h, self.dct_w, self.freqs, x.shape[2], x.shape[3],
            x.dtype, x.device))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fast path uses the DCT it computes, so a fixed DCT filter read
        # from a checkpoint must be that DCT (released weights are).
        key = prefix + 'weight'
        if self.separable and key in state_dict:
            loaded = state_dict[key]
            if loaded.shape == self.weight.shape and not torch.allclose(
                    loaded.double(), self.weight.double(), atol=1e-5):
                err = (loaded.double() - self.weight.double()).abs().max()
                raise ValueError(
                    f'{key} is not the fixed DCT filter of frequencies '
                    f'{list(self.freqs)} on {self.dct_h}x{self.dct_w} (max '
                    f'difference {err:.3g}); build the layer with the '
                    f'checkpoint\'s freq_sel_method, or with learnable=True '
                    f'or filter_init="random" for a non-DCT filter.')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@MODELS.register_module()
class MultiSpectralAttention(BaseModule):
    """Multi-spectral channel attention (FCA) of `FcaNet
    <https://arxiv.org/abs/2012.11879>`_.

    SE's global average pooling is the (0, 0) term of a 2D DCT; FCA splits
    the channels into ``n`` equal groups and squeezes group ``k`` with DCT
    frequency ``k``, then applies SE's excitation:
    ``out = x * sigmoid(fc2(relu(fc1(squeeze(x)))))`` with bias-free FCs.
    Works as an MMDetection ResNet plugin, e.g.
    ``dict(cfg=dict(type='MultiSpectralAttention', dct_h=7, dct_w=7),
    position='after_conv3')``; its modules are named ``att`` as in the
    released checkpoints.

    With autograd on and the fixed DCT filter, the layer runs as one fused
    autograd function (same result, cheaper backward); hooks on its
    ``dct_layer`` and ``fc`` submodules fire on the module path only, i.e.
    without autograd (inference) or with the ablation's filters.

    Args:
        in_channels (int): Number of input channels (the plugin builder
            passes it).
        dct_h (int): Height of the DCT filter; inputs of any other height
            are adaptively average pooled to it first. Defaults to 7.
        dct_w (int): Width of the DCT filter. Defaults to 7.
        reduction (int): Squeeze ratio of the first FC. Defaults to 16.
        freq_sel_method (str | list): ``'top16'`` (the published models),
            any of ``top|low|bot`` x ``1,2,4,8,16,32``, or an explicit list
            of (u, v) pairs on the 7x7 grid. Defaults to ``'top16'``.
        learnable_filter (bool): Train the filter (ablation). Defaults to
            False.
        filter_init (str): ``'dct'`` or ``'random'`` (ablation). Defaults
            to ``'dct'``.
        inplace (bool): When autograd is off (inference), scale the input
            in place instead of allocating the output. Only for callers that
            do not reuse the input (FcaNet's blocks). Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """
    _abbr_ = 'att'

    def __init__(self,
                 in_channels: int,
                 dct_h: int = 7,
                 dct_w: int = 7,
                 reduction: int = 16,
                 freq_sel_method: FreqSel = 'top16',
                 learnable_filter: bool = False,
                 filter_init: str = 'dct',
                 inplace: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.inplace = inplace
        check_filter_size(dct_h, dct_w)
        freqs = get_freq_indices(freq_sel_method)
        check_channels_divisible(in_channels, len(freqs))
        if not isinstance(reduction, int) or reduction < 1 \
                or in_channels // reduction < 1:
            raise ValueError(
                f'reduction={reduction!r} is not allowed for in_channels='
                f'{in_channels}; it must be an integer in [1, {in_channels}] '
                f'so that the hidden layer keeps at least one unit.')
        self.in_channels = in_channels
        self.freq_sel_method = freq_sel_method
        self.dct_layer = MultiSpectralDCT(
            in_channels, dct_h, dct_w, scale_freqs(freqs, dct_h, dct_w),
            learnable=learnable_filter, filter_init=filter_init)
        hidden = in_channels // reduction
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, in_channels, bias=False),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reweight the channels of ``x``.

        Args:
            x (Tensor): Feature map of shape (N, C, H, W), any H and W.

        Returns:
            Tensor: ``x`` scaled per channel, same shape and dtype.
        """
        if x.dim() != 4:
            raise ValueError(
                f'{type(self).__name__} expects a 4D (N, C, H, W) input, got '
                f'a {x.dim()}D tensor of shape {tuple(x.shape)}.')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} was built for in_channels='
                f'{self.in_channels}, got an input with {x.shape[1]} channels '
                f'(shape {tuple(x.shape)}).')
        if self.dct_layer.separable and torch.is_grad_enabled():
            return self._fused_forward(x)
        y = self.dct_layer(x)
        # The squeeze can exceed the fp16 range (it is GAP * sqrt(H*W) for
        # the DC term). fc2(relu(fc1(y))) is positively homogeneous in y
        # (bias-free), so y is normalised per sample before the FCs and the
        # scale restored in float32 before the sigmoid; the tiny excitation
        # runs outside autocast, in the FCs' own dtype.
        with torch.autocast(x.device.type, enabled=False):
            scale = y.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
            fc1, relu, fc2, sigmoid = self.fc
            z = fc2(relu(fc1((y / scale).to(fc1.weight.dtype))))
            att = sigmoid(z.to(scale.dtype) * scale)
        att = att.to(x.dtype).view(*att.shape, 1, 1)
        if self.inplace and not torch.is_grad_enabled():
            return x.mul_(att)
        return x * att

    def _fused_forward(self, x):
        """Training path of the fixed DCT filter: same result, one fused
        autograd function (see ``_FusedFCA``)."""
        dct = self.dct_layer
        rows, cols, scale = pooled_dct_factors(dct.dct_h, dct.dct_w,
                                               dct.freqs, x.shape[2],
                                               x.shape[3], x.dtype, x.device)
        return _FusedFCA.apply(x, self.fc[0].weight, self.fc[2].weight,
                               rows, cols, scale)
