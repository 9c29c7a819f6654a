"""The FCA layer's formula computed directly in float64, independently of
mmfca's implementation (scipy's orthonormal DCT)."""
import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dctn

from mmfca.models import get_freq_indices


def reference_fca(layer, x):
    """Direct float64 computation of the release's formula, from scipy's
    orthonormal DCT: pool to the filter size, take DCT term (u_k, v_k) of
    each channel of group k (groups split as ``numpy.array_split`` does),
    bias-free FC, ReLU, FC, sigmoid, scale."""
    x = x.double()
    n, c, h, w = x.shape
    dct_h, dct_w = layer.dct_layer.dct_h, layer.dct_layer.dct_w
    pooled = F.adaptive_avg_pool2d(x, (dct_h, dct_w)).numpy()
    coeffs = dctn(pooled, type=2, norm='ortho', axes=(2, 3))
    freqs = get_freq_indices(layer.freq_sel_method)
    y = np.empty((n, c))
    for k, channels in enumerate(np.array_split(np.arange(c), len(freqs))):
        u, v = freqs[k]
        for ch in channels:
            y[:, ch] = coeffs[:, ch, u * (dct_h // 7), v * (dct_w // 7)]
    w1 = layer.fc[0].weight.detach().double().numpy()
    w2 = layer.fc[2].weight.detach().double().numpy()
    att = 1 / (1 + np.exp(-(np.maximum(y @ w1.T, 0) @ w2.T)))
    return torch.from_numpy(x.numpy() * att[:, :, None, None])
