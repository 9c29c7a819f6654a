"""The fitting mode: the weight-shared single-frequency squeeze and the
hook that draws its cells."""
import math

import pytest
import torch
from mmengine.config import Config

from _helpers import swapped_fcanet
from mmfca.frequency_selection import (GRID_CELLS, CellSamplingHook,
                                       CellSamplingSqueeze, set_cell,
                                       use_cell_sampling, write_snippet)
from mmfca.models import FcaNet, MultiSpectralAttention
from mmfca.models.layers import MultiSpectralSqueeze


def dct_image(u, v, h, w):
    """The orthonormal 2D DCT-II basis image of (u, v) on h x w, from the
    formula (float64)."""
    def basis(f, n):
        scale = math.sqrt((1 if f == 0 else 2) / n)
        return torch.tensor([scale * math.cos(math.pi * f * (i + 0.5) / n)
                             for i in range(n)], dtype=torch.float64)
    return basis(u, h)[:, None] * basis(v, w)[None]


def test_squeeze_without_cells_is_the_published_one():
    # same state-dict keys and values, plus each cell's own scale of the
    # squeeze (ones; used only with cells set); same outputs
    model, swapped, state, after_state = swapped_fcanet(use_cell_sampling)
    assert swapped == 8
    squeezes = [m for m in model.modules()
                if isinstance(m, CellSamplingSqueeze)]
    assert len(squeezes) == 8
    scales = [k for k in after_state if k.endswith('dct_layer.cell_scale')]
    assert len(scales) == 8
    assert [k for k in after_state if k not in scales] == list(state)
    assert all(after_state[k].shape == (49, s.in_channels)
               and bool((after_state[k] == 1).all())
               for k, s in zip(scales, squeezes))
    # a second call changes nothing
    assert use_cell_sampling(model) == 8
    assert [m for m in model.modules()
            if isinstance(m, CellSamplingSqueeze)] == squeezes


@pytest.mark.parametrize('dct,size', [(7, (7, 7)), (14, (9, 11)),
                                      (None, (14, 14))])
def test_one_cell_squeezes_with_that_basis_image(dct, size):
    h, w = size
    squeeze = CellSamplingSqueeze(8, dct, dct)
    x = torch.randn(3, 8, h, w, dtype=torch.float64)
    for u, v in [(0, 0), (2, 5), (6, 6)]:
        set_cell(squeeze, (u, v))
        if dct is None:  # the input's own DCT, frequencies scaled
            ref = dct_image(u * h // 7, v * w // 7, h, w)
            y = (x * ref).sum((2, 3))
        else:  # the dct x dct DCT of the pooled input
            ref = dct_image(u * (dct // 7), v * (dct // 7), dct, dct)
            pooled = torch.nn.functional.adaptive_avg_pool2d(x, dct)
            y = (pooled * ref).sum((2, 3))
        torch.testing.assert_close(squeeze(x), y)
    # one cell per image: row n is image n's cell
    cells = torch.tensor([0, 19, 48])
    set_cell(squeeze, cells)
    out = squeeze(x)
    for n, index in enumerate(cells.tolist()):
        set_cell(squeeze, index)
        torch.testing.assert_close(out[n], squeeze(x[n:n + 1])[0])
    # a cell's own scale multiplies its reading, channel by channel, and
    # nothing else's
    with torch.no_grad():
        squeeze.cell_scale[19] = torch.arange(8.)
    set_cell(squeeze, cells)
    scaled = squeeze(x)
    torch.testing.assert_close(scaled, out * torch.tensor(
        [[1.] * 8, list(range(8)), [1.] * 8], dtype=torch.float64))
    set_cell(squeeze, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match='cells for \\(2,\\) images, got '
                       'a batch of 3'):
        squeeze(x)


def test_one_cell_network_is_the_single_frequency_network():
    # the ablation's network for (u, v), with the fitted weights
    torch.manual_seed(0)
    fitted = FcaNet(18).eval()
    use_cell_sampling(fitted)
    set_cell(fitted, (3, 1))
    single = FcaNet(18, freq_sel_method=[(3, 1)]).eval()
    weights = {k: v for k, v in fitted.state_dict().items()
               if 'dct_layer' not in k}
    missing, _ = single.load_state_dict(weights, strict=False)
    assert all('dct_layer' in k for k in missing)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(fitted(x), single(x)):
            torch.testing.assert_close(a, b)


def test_cells_are_checked_and_only_fixed_dct_is_fitted():
    squeeze = CellSamplingSqueeze(4)
    with pytest.raises(ValueError, match=r'pair \(7, 0\).*0 <= u, v < 7'):
        set_cell(squeeze, (7, 0))
    with pytest.raises(ValueError, match=r'pair \(1.7, 2\)'):
        set_cell(squeeze, (1.7, 2))
    for bad in (49, True, 'a'):
        with pytest.raises(ValueError, match=rf"Cell {bad!r} is neither a "
                           r'\(u, v\) pair .* index in \[0, 49\)'):
            set_cell(squeeze, bad)
    with pytest.raises(ValueError, match=r'not integer indices in \[0, 49\)'):
        set_cell(squeeze, torch.tensor([3, 60]))
    with pytest.raises(ValueError, match="AblationSqueeze squeeze; fitting "
                       "ranks fixed DCT cells"):
        use_cell_sampling(FcaNet(18, learnable_filter=True))
    with pytest.raises(ValueError, match='Linear has no FCA layer'):
        use_cell_sampling(torch.nn.Linear(2, 2))


def test_hook_draws_are_seeded_and_cleared():
    model = torch.nn.Sequential(MultiSpectralAttention(16, 7, 7, 4))
    use_cell_sampling(model)
    squeeze = model[0].dct_layer
    runner = type('Runner', (), dict(model=model))()
    batch = dict(inputs=[torch.zeros(3, 8, 8)] * 5)

    def draws(seed, mode='image', n=20):
        hook, out = CellSamplingHook(seed, mode), []
        for i in range(n):
            torch.manual_seed(i)  # other users of the global generator
            hook.before_train_iter(runner, i, batch)
            cells = squeeze.cells
            out.append(cells.tolist() if torch.is_tensor(cells) else cells)
            hook.after_train_iter(runner, i, batch)
            assert squeeze.cells is None
        return out

    first = draws(3)
    assert first == draws(3) and first != draws(4)
    flat = sum(first, [])
    assert all(len(c) == 5 for c in first)
    assert min(flat) >= 0 and max(flat) < 49
    assert len(set(flat)) > 30  # 100 uniform draws cover most of the 49
    batch_draws = draws(3, 'batch', 60)
    assert all(isinstance(c, int) and 0 <= c < 49 for c in batch_draws)
    assert len(set(batch_draws)) > 20
    with pytest.raises(ValueError, match="sampling mode 'pixel'"):
        CellSamplingHook(0, 'pixel')


def test_exported_list_builds_the_published_layout(tmp_path):
    ranked = list(reversed(GRID_CELLS))  # any ranking of the 49
    path, snippet = write_snippet(str(tmp_path), ranked, 16)
    cfg = Config.fromfile(path)
    pairs = cfg.model.backbone.freq_sel_method
    assert [tuple(p) for p in pairs] == ranked[:16]
    assert snippet == open(path).read()
    fitted = FcaNet(18, freq_sel_method=pairs)
    published = FcaNet(18)  # top16, the released checkpoints' layout
    state = fitted.state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        k: v.shape for k, v in published.state_dict().items()}
    # loads into a model built from the snippet; the filters are its own
    again = FcaNet(18, freq_sel_method=pairs)
    again.load_state_dict(state)
    squeeze = again.layer4[0].att.dct_layer
    assert type(squeeze) is MultiSpectralSqueeze
    assert squeeze.grid_freqs == tuple(ranked[:16])
    torch.testing.assert_close(
        squeeze.weight[::32].double(),
        torch.stack([dct_image(u, v, 7, 7) for u, v in ranked[:16]]),
        rtol=0, atol=1e-6)
    # and not into the published top16 one: its filters differ
    with pytest.raises(ValueError, match='is not the fixed DCT filter'):
        published.load_state_dict(state)
