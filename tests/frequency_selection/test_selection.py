"""The second fitting mode: Gumbel-softmax selection logits per FCA layer,
their temperature schedule and the scores the cells are ranked by."""
import math

import numpy as np
import pytest
import torch

from _helpers import swapped_fcanet
from mmfca.frequency_selection import (GRID_CELLS, CellSamplingSqueeze,
                                       CellSelectionHook,
                                       CellSelectionSqueeze, selection_scores,
                                       set_cell, set_temperature,
                                       use_cell_sampling)
from mmfca.models import FcaNet, MultiSpectralAttention
from mmfca.testing.fca_reference import dct_squeeze


def basis_image(u, v):
    """The orthonormal 7x7 DCT basis image of (u, v): scipy's inverse DCT
    of a one-hot (float64)."""
    from scipy.fft import idctn
    onehot = np.zeros((7, 7))
    onehot[u, v] = 1
    return torch.from_numpy(idctn(onehot, norm='ortho'))


def test_selection_off_is_the_published_squeeze():
    # the published keys and values, plus each layer's cell_scale and
    # logits (zeros: every cell equally likely); the same outputs
    model, swapped, state, after_state = swapped_fcanet(
        lambda m: use_cell_sampling(m, CellSelectionSqueeze))
    assert swapped == 8
    added = [k for k in after_state if k not in state]
    assert sorted({k.rsplit('.', 1)[1] for k in added}) == [
        'cell_scale', 'logits']
    assert len(added) == 16
    assert all(bool((after_state[k] == 0).all()) and after_state[k].shape
               == (49, ) for k in added if k.endswith('logits'))
    # one fitting mode per model
    with pytest.raises(ValueError, match='already has a CellSelection'
                       'Squeeze; one fitting mode per model'):
        use_cell_sampling(model)


@pytest.mark.parametrize('cell', [(0, 0), (2, 5), (6, 1)])
def test_a_certain_draw_squeezes_with_that_cell_at_unit_size(cell):
    """With one cell's logit far above the rest, every image draws it; the
    output is that cell's reading (the formula's basis image), divided by
    its root mean square over the batch and channels, times its scale."""
    torch.manual_seed(0)
    squeeze = CellSelectionSqueeze(8, 7, 7).double()
    k = GRID_CELLS.index(cell)
    with torch.no_grad():
        squeeze.logits[k] = 1e4
        squeeze.cell_scale[k] = torch.arange(1., 9.)
    x = torch.randn(4, 8, 7, 7, dtype=torch.float64)
    squeeze.temperature = 1.0
    y = squeeze(x)
    reading = dct_squeeze(x, [cell], 7, 7)
    rms = reading.square().mean().sqrt()
    torch.testing.assert_close(y, reading / rms * torch.arange(1., 9.))
    # off again: the published squeeze (top16 over 8 channels)
    squeeze.temperature = None
    assert not torch.equal(squeeze(x), y)


def test_draws_are_one_cell_per_image_and_follow_the_logits():
    torch.manual_seed(0)
    squeeze = CellSelectionSqueeze(4, 7, 7).double()
    squeeze.temperature = 1.0
    # x is cell k's basis image, read 1 by k and 0 by the others: an
    # output of 1 says the image drew k
    bank = torch.stack([basis_image(u, v) for u, v in GRID_CELLS])
    with torch.no_grad():
        squeeze.logits.copy_(torch.linspace(-3, 3, 49, dtype=torch.float64))
    counts = torch.zeros(49)
    for cell in range(49):
        x = bank[cell].expand(256, 4, 7, 7)
        y = squeeze(x)
        hit = y[:, 0] > 0.5  # the images that drew this cell
        # the others read 0: a draw is one cell, not a mixture
        assert torch.all((y[:, 0] - hit.double()).abs() < 1e-9)
        counts[cell] = hit.double().mean()
    # the share drawing each cell follows softmax(logits)
    expected = torch.softmax(squeeze.logits.detach(), 0).float()
    assert float((counts - expected).abs().max()) < 0.05


def test_logits_learn_the_cell_that_lowers_the_loss():
    """A loss that rewards cell (3, 4)'s reading alone: a few SGD steps
    make it the most probable cell (and the first ranked)."""
    torch.manual_seed(0)
    layer = MultiSpectralAttention(8, 7, 7, 4)
    model = torch.nn.Sequential(layer)
    use_cell_sampling(model, CellSelectionSqueeze)
    squeeze = layer.dct_layer
    target = GRID_CELLS.index((3, 4))
    x = torch.randn(16, 8, 7, 7) + 3 * basis_image(3, 4).float()
    optimizer = torch.optim.SGD([squeeze.logits], lr=1.0)
    set_temperature(model, 1.0)
    for _ in range(30):
        optimizer.zero_grad()
        y = squeeze(x)
        (-y.mean()).backward()
        optimizer.step()
    set_temperature(model, None)
    scores = selection_scores(model)
    assert max(scores, key=scores.get) == (3, 4)
    assert int(squeeze.logits.argmax()) == target


def test_scores_are_the_mean_log_probability_over_layers():
    torch.manual_seed(0)
    model = FcaNet(18)
    use_cell_sampling(model, CellSelectionSqueeze)
    logits = []
    for m in model.modules():
        if isinstance(m, CellSelectionSqueeze):
            with torch.no_grad():
                m.logits.normal_()
            logits.append(m.logits.detach().double().numpy())
    logits = np.stack(logits)
    log_prob = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = log_prob.mean(0)
    scores = selection_scores(model)
    assert list(scores) == list(GRID_CELLS)
    np.testing.assert_allclose([scores[c] for c in GRID_CELLS], expected,
                               rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match='no CellSelectionSqueeze'):
        selection_scores(FcaNet(18))
    # a set cell still evaluates that cell, as in the sampling mode
    assert set_cell(model, (1, 2)) == 8
    assert all(m.cells == 9 for m in model.modules()
               if isinstance(m, CellSamplingSqueeze))


def test_temperature_falls_geometrically_and_is_cleared():
    model = torch.nn.Sequential(MultiSpectralAttention(16, 7, 7, 4))
    use_cell_sampling(model, CellSelectionSqueeze)
    squeeze = model[0].dct_layer
    hook = CellSelectionHook(4.0, 0.25)
    seen = []
    for it in range(5):
        runner = type('Runner', (), dict(model=model, iter=it,
                                         max_iters=5))()
        hook.before_train_iter(runner, it)
        seen.append(squeeze.temperature)
        hook.after_train_iter(runner, it)
        assert squeeze.temperature is None
    np.testing.assert_allclose(seen, [4.0 * (0.25 / 4.0)**(i / 4)
                                      for i in range(5)])
    assert seen[0] == 4.0 and math.isclose(seen[-1], 0.25)
    for bad in (0, -1.0, float('nan'), 'hot'):
        with pytest.raises(ValueError, match=rf'end={bad!r} is not a '
                           'positive number'):
            CellSelectionHook(1.0, bad)
