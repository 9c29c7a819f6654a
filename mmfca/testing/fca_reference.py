# Copyright (c) mmfca contributors. All rights reserved.
"""The formulas the FCA layer is checked and measured against, written once
for the tests and the benchmarks, independently of mmfca's implementation
(none of its filters, caches or squeeze code; only the published frequency
tables, which tests/models/layers/test_dct.py checks entry by entry):

* ``'dct'``: FCA in float64 from scipy's orthonormal DCT (the paper's
  formula: pool to the filter size, DCT term (u_k, v_k) of each channel of
  group k, groups split as ``numpy.array_split`` does);
* ``'release'``: the release's computation in the input's dtype (pool a
  copy to the filter size, multiply by the C x h x w filter bank, sum);
* ``'gap'``: SE, global average pooling.

Each is followed by SE's excitation through the layer's own ``fc``
(``nn.Sequential``: the module calls SE makes) and the scale.
"""
import numpy as np
import torch
import torch.nn.functional as F

from mmfca.models.layers.dct import get_grid_freqs


def release_squeeze(x, bank):
    """The release's squeeze: adaptively pool ``x`` to the filter bank's
    size if it differs, multiply by the (C, h, w) ``bank``, sum."""
    if x.shape[-2:] != bank.shape[-2:]:
        x = F.adaptive_avg_pool2d(x, bank.shape[-2:])
    return (x * bank.to(x.dtype)).sum((2, 3))


def dct_squeeze(x, freq_sel_method, dct_h, dct_w):
    """FCA's squeeze in float64 from scipy's orthonormal DCT."""
    from scipy.fft import dctn  # the tests' dependency, not the models'
    x = x.detach().double()
    n, c = x.shape[:2]
    pooled = F.adaptive_avg_pool2d(x, (dct_h, dct_w)).numpy()
    coeffs = dctn(pooled, type=2, norm='ortho', axes=(2, 3))
    freqs = get_grid_freqs(freq_sel_method)
    y = np.empty((n, c))
    for k, channels in enumerate(np.array_split(np.arange(c), len(freqs))):
        u, v = freqs[k]
        y[:, channels] = coeffs[:, channels, u * (dct_h // 7),
                                v * (dct_w // 7)]
    return torch.from_numpy(y)


def channel_weights(layer, x, squeeze='release'):
    """``sigmoid(fc2(relu(fc1(squeeze(x)))))`` as (N, C, 1, 1), through
    ``layer``'s ``fc`` (an FCA layer's), in ``x``'s dtype with autograd:
    ``'release'`` or ``'gap'`` (SE)."""
    if squeeze == 'gap':
        y = x.mean((2, 3))
    elif squeeze == 'release':
        y = release_squeeze(x, layer.dct_layer.weight)
    else:
        raise ValueError(f'squeeze={squeeze!r}; allowed: gap, release')
    return layer.fc(y)[:, :, None, None]


def attention(layer, x, squeeze='dct'):
    """``x * sigmoid(fc2(relu(fc1(squeeze(x)))))`` with ``layer``'s FCs:
    ``'dct'`` in float64 (no autograd), ``'release'`` and ``'gap'`` (see
    :func:`channel_weights`) in ``x``'s dtype."""
    if squeeze != 'dct':
        return x * channel_weights(layer, x, squeeze)
    dct = layer.dct_layer
    y = dct_squeeze(x, layer.freq_sel_method, dct.dct_h, dct.dct_w)
    w1, w2 = (layer.fc[i].weight.detach().double() for i in (0, 2))
    att = torch.sigmoid(torch.relu(y @ w1.t()) @ w2.t())
    return x.detach().double() * att[:, :, None, None]


def reference_fca(layer, x):
    """The layer's output computed directly in float64 (``'dct'``)."""
    return attention(layer, x, 'dct')
