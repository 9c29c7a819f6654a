"""mmfca/models/layers/dct.py: the published frequency tables, the DCT
filters against scipy's orthonormal DCT, the two scaling rules, the channel
groups and the adaptive pooling folded into filters."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.fft import dctn

from mmfca.models.layers.dct import (FREQ_SEL_METHODS, adaptive_pool_matrix,
                                     channel_groups, dct_filters,
                                     fca_filters, get_grid_freqs,
                                     pooled_filters, scale_freqs)

# The FcaNet release's tables: u list, then v list, 32 pairs each on the
# 7x7 grid
PUBLISHED = {
    'top': ((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2,
             4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1),
            (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2,
             6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)),
    'low': ((0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0,
             1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4),
            (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5,
             4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3)),
    'bot': ((6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5,
             6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6),
            (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1,
             4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3)),
}


def test_the_published_tables_are_32_distinct_grid_pairs():
    for us, vs in PUBLISHED.values():
        assert len(us) == len(vs) == len(set(zip(us, vs))) == 32
        assert all(0 <= c < 7 for c in us + vs)


@pytest.mark.parametrize('num', [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize('kind', sorted(PUBLISHED))
def test_each_named_method_is_a_prefix_of_its_published_table(kind, num):
    us, vs = PUBLISHED[kind]
    assert get_grid_freqs(f'{kind}{num}') == list(zip(us[:num], vs[:num]))


def test_eighteen_named_methods_and_explicit_pairs():
    assert sorted(FREQ_SEL_METHODS) == sorted(
        f'{kind}{n}' for kind in PUBLISHED for n in (1, 2, 4, 8, 16, 32))
    assert get_grid_freqs([(0, 0), [3, 4]]) == [(0, 0), (3, 4)]


@pytest.mark.parametrize('size', [7, 14, 28, 56])
def test_filters_are_orthonormal_and_equal_scipy_dct(size):
    freqs = scale_freqs(get_grid_freqs('top32'), size, size)
    filters = dct_filters(size, size, freqs).flatten(1)
    gram = filters @ filters.t()
    torch.testing.assert_close(gram, torch.eye(len(freqs), dtype=gram.dtype))
    # independent check: scipy's orthonormal DCT-II picks the same terms
    x = np.random.default_rng(0).standard_normal((size, size))
    coeffs = dctn(x, type=2, norm='ortho')
    np.testing.assert_allclose(filters.numpy() @ x.reshape(-1),
                               [coeffs[u, v] for u, v in freqs],
                               rtol=1e-10, atol=1e-10)


def test_non_square_filter_axes():
    """u indexes the height axis, v the width axis."""
    x = np.random.default_rng(1).standard_normal((7, 14))
    coeffs = dctn(x, type=2, norm='ortho')
    filt = dct_filters(7, 14, [(3, 5)])[0].numpy()
    np.testing.assert_allclose((filt * x).sum(), coeffs[3, 5], rtol=1e-10)


def test_scaling_rules_fcanets_and_proportional():
    """FcaNet's rule ``u * (h // 7)`` (lists, sizes >= 7) and the
    proportional one ``u * h // 7`` (lists or tensors, any size); equal on
    multiples of 7."""
    assert scale_freqs([(1, 1)], 14, 14) == [(2, 2)]
    assert scale_freqs([(1, 1), (6, 3)], 56, 28) == [(8, 4), (48, 12)]
    assert scale_freqs([(5, 2)], 8, 8) == [(5, 2)]
    assert scale_freqs([(5, 2)], 8, 8, proportional=True) == [(5, 2)]
    assert scale_freqs([(6, 6)], 10, 4, proportional=True) == [(8, 3)]
    grid = get_grid_freqs('top16')
    for proportional in (False, True):
        as_tensor = scale_freqs(torch.tensor(grid), 56, 28, proportional)
        assert as_tensor.tolist() == [list(p)
                                      for p in scale_freqs(grid, 56, 28)]
    with pytest.raises(ValueError, match=r'dct_h=5 cannot hold the 7x7'):
        scale_freqs(grid, 5, 7)


@pytest.mark.parametrize('channels,sizes', [(256, [16] * 16),
                                            (24, [2] * 8 + [1] * 8),
                                            (54, [4] * 6 + [3] * 10),
                                            (72, [5] * 8 + [4] * 8),
                                            (8, [1] * 8 + [0] * 8)])
def test_channel_groups_equal_or_as_equal_as_possible(channels, sizes):
    """16 frequencies: the release's equal groups when they divide, else
    sizes differing by at most one, first groups larger (MobileNetV3's 72,
    MMPretrain's SELayer test's 54)."""
    assert channel_groups(channels, 16) == sizes


def test_channel_group_k_gets_frequency_k():
    grid = get_grid_freqs('top4')
    bank = fca_filters(grid, (14, 14), (14, 14),
                       group_sizes=channel_groups(12, 4))
    assert bank.shape == (12, 14, 14)
    unique = dct_filters(14, 14, scale_freqs(grid, 14, 14))
    for c in range(12):
        torch.testing.assert_close(bank[c], unique[c // 3])


@pytest.mark.parametrize('h,w', [(7, 7), (14, 9), (5, 30), (1, 1)])
def test_pooled_filters_equal_pool_then_filter(h, w):
    """Filters with the pooling folded in give, on the input, what the
    pooled input gives with the filters (FcaNet's pool-then-filter)."""
    filters = torch.randn(3, 7, 7, dtype=torch.float64)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    pooled = F.adaptive_avg_pool2d(x, 7)
    torch.testing.assert_close((x * pooled_filters(filters, h, w)).sum(
        (2, 3)), (pooled * filters).sum((2, 3)))


@pytest.mark.parametrize('n_in,n_out', [(7, 7), (16, 7), (20, 7), (5, 7),
                                        (100, 14), (13, 3)])
def test_pool_matrix_is_adaptive_avg_pool(n_in, n_out):
    x = torch.randn(2, 3, n_in, dtype=torch.float64)
    ref = F.adaptive_avg_pool1d(x, n_out)
    torch.testing.assert_close(x @ adaptive_pool_matrix(n_in, n_out).t(), ref)
