import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.fft import dctn

from mmfca.models.layers.dct import (FREQ_SEL_METHODS, adaptive_pool_matrix,
                                     channel_groups, dct_filters,
                                     fca_filters, pooled_filters,
                                     get_grid_freqs, scale_freqs)


def test_eighteen_named_methods():
    assert len(FREQ_SEL_METHODS) == 18
    for kind in ('top', 'low', 'bot'):
        for n in (1, 2, 4, 8, 16, 32):
            pairs = get_grid_freqs(f'{kind}{n}')
            assert len(pairs) == n
            assert len(set(pairs)) == n  # no frequency twice
            assert all(0 <= u < 7 and 0 <= v < 7 for u, v in pairs)


def test_tables_match_the_paper():
    assert get_grid_freqs('top16') == [
        (0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0),
        (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3), (3, 5), (2, 2)]
    assert get_grid_freqs('low4') == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert get_grid_freqs('bot2') == [(6, 6), (1, 4)]
    assert get_grid_freqs('top32')[-1] == (1, 3)
    assert get_grid_freqs('low32')[-1] == (4, 3)
    assert get_grid_freqs('bot32')[-1] == (6, 3)


def test_explicit_pairs_pass_through():
    assert get_grid_freqs([(0, 0), [3, 4]]) == [(0, 0), (3, 4)]


@pytest.mark.parametrize('h,w', [(7, 7), (14, 14), (5, 9), (56, 56), (3, 11)])
def test_dc_term_is_gap_times_sqrt_hw(h, w):
    """The paper's theorem: DCT (0, 0) == GAP * sqrt(H * W) (orthonormal)."""
    x = torch.randn(4, h, w, dtype=torch.float64)
    dc = (x * dct_filters(h, w, [(0, 0)])[0]).sum((1, 2))
    torch.testing.assert_close(dc, x.mean((1, 2)) * (h * w)**0.5)


@pytest.mark.parametrize('size', [7, 14, 28, 56])
def test_filters_are_orthonormal_and_equal_scipy_dct(size):
    freqs = scale_freqs(get_grid_freqs('top32'), size, size)
    filters = dct_filters(size, size, freqs).flatten(1)
    gram = filters @ filters.t()
    torch.testing.assert_close(gram, torch.eye(len(freqs), dtype=gram.dtype))
    # independent check: scipy's orthonormal DCT-II picks the same terms
    x = np.random.default_rng(0).standard_normal((size, size))
    coeffs = dctn(x, type=2, norm='ortho')
    ours = filters.numpy() @ x.reshape(-1)
    np.testing.assert_allclose(ours, [coeffs[u, v] for u, v in freqs],
                               rtol=1e-10, atol=1e-10)


def test_non_square_filter_axes():
    """u indexes the height axis, v the width axis."""
    x = np.random.default_rng(1).standard_normal((7, 14))
    coeffs = dctn(x, type=2, norm='ortho')
    filt = dct_filters(7, 14, [(3, 5)])[0].numpy()
    np.testing.assert_allclose((filt * x).sum(), coeffs[3, 5], rtol=1e-10)


def test_scaling_to_filter_size():
    assert scale_freqs([(1, 1)], 14, 14) == [(2, 2)]
    assert scale_freqs([(1, 1), (6, 3)], 56, 28) == [(8, 4), (48, 12)]
    assert scale_freqs([(5, 2)], 7, 7) == [(5, 2)]


def test_channel_group_k_gets_frequency_k():
    grid = get_grid_freqs('top4')
    bank = fca_filters(grid, (14, 14), (14, 14),
                       group_sizes=channel_groups(12, 4))
    assert bank.shape == (12, 14, 14)
    unique = dct_filters(14, 14, scale_freqs(grid, 14, 14))
    for c in range(12):
        torch.testing.assert_close(bank[c], unique[c // 3])


@pytest.mark.parametrize('h,w', [(7, 7), (14, 9), (5, 30), (1, 1)])
def test_folded_pooling_equals_pool_then_filter(h, w):
    """Filters with the pooling folded in give, on the input, what the
    pooled input gives with the filters (FcaNet's pool-then-filter)."""
    filters = torch.randn(3, 7, 7, dtype=torch.float64)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    pooled = F.adaptive_avg_pool2d(x, 7)
    torch.testing.assert_close((x * pooled_filters(filters, h, w)).sum((2, 3)),
                               (pooled * filters).sum((2, 3)))


@pytest.mark.parametrize('n_in,n_out', [(7, 7), (16, 7), (20, 7), (5, 7),
                                        (100, 14), (13, 3)])
def test_pool_matrix_is_adaptive_avg_pool(n_in, n_out):
    x = torch.randn(2, 3, n_in, dtype=torch.float64)
    ref = F.adaptive_avg_pool1d(x, n_out)
    torch.testing.assert_close(x @ adaptive_pool_matrix(n_in, n_out).t(), ref)
