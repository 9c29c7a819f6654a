"""The probe mode: each cell's squared correlation with the labels, checked
against scipy's DCT and numpy's correlation; the labels of the three
libraries' data samples."""
import numpy as np
import pytest
import torch

from mmfca.frequency_selection import (GRID_CELLS, CellReadingProbe,
                                       present_classes)
from mmfca.models import MultiSpectralAttention
from mmfca.testing.fca_reference import dct_squeeze


def expected_scores(inputs, presence):
    """The score of each cell from the formula: per layer, the squared
    Pearson correlation of each channel's DCT term (scipy, after pooling to
    7x7) with each class's presence, over the classes present and absent
    at least twice; averaged over classes and channels, then layers."""
    valid = [m for m in range(presence.shape[1])
             if 2 <= presence[:, m].sum() <= len(presence) - 2]
    per_layer = []
    for x in inputs:
        layer = []
        for cell in GRID_CELLS:
            reading = dct_squeeze(x, [cell], 7, 7).numpy()  # (N, C)
            r2 = [np.corrcoef(reading[:, c], presence[:, m])[0, 1]**2
                  for m in valid for c in range(reading.shape[1])]
            layer.append(np.mean(r2))
        per_layer.append(layer)
    return np.mean(per_layer, 0)


def test_scores_are_the_squared_correlation_with_the_labels():
    torch.manual_seed(0)
    # two FCA layers of 7x7 filters on 14x14 maps (the probe's filters fold
    # the pooling to 7x7 in)
    model = torch.nn.Sequential(MultiSpectralAttention(8, 7, 7, 4),
                                MultiSpectralAttention(8, 7, 7, 4))
    inputs = [[], []]
    for i, layer in enumerate(model):
        layer.register_forward_pre_hook(
            lambda m, args, i=i: inputs[i].append(args[0].clone()))
    probe = CellReadingProbe(model, num_classes=4)
    rng = np.random.default_rng(0)
    presence = []
    for size in (6, 7):  # two batches: the statistics accumulate
        labels = [torch.from_numpy(np.flatnonzero(rng.random(4) < 0.4))
                  for _ in range(size)]
        if size == 6:  # class 3 present in one image only: left out
            labels = [c[c != 3] for c in labels]
            labels[0] = torch.cat([labels[0], torch.tensor([3])])
        else:
            labels = [c[c != 3] for c in labels]
        probe.update(labels)
        x = torch.randn(size, 8, 14, 14)
        x[:, :4] += torch.stack([  # class 1 shows in the first channels
            torch.full((4, 14, 14), 2.0 * (1 in c.tolist())) for c in labels])
        # a mean a million times the spread: its sums of squares must not
        # cancel
        x[:, 6:] += 1e6
        with torch.no_grad():
            model[1](model[0](x))  # x to layer 0, its output to layer 1
        presence += [np.isin(np.arange(4), c.numpy()) for c in labels]
    presence = np.array(presence, dtype=float)
    assert presence[:, 3].sum() == 1  # not a class the scores average
    scores = probe.scores()
    assert list(scores) == list(GRID_CELLS)
    expected = expected_scores(
        [torch.cat(inputs[0]), torch.cat(inputs[1])], presence)
    np.testing.assert_allclose([scores[c] for c in GRID_CELLS], expected,
                               rtol=1e-6, atol=1e-9)
    # class 1 lives in the channels' means: (0, 0) reads it best
    assert max(scores, key=scores.get) == (0, 0)
    probe.remove()
    assert not model[0].dct_layer._forward_pre_hooks


def test_labels_of_each_library():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData, PixelData
    from mmpretrain.structures import DataSample
    from mmseg.structures import SegDataSample
    cls = DataSample().set_gt_label(3)
    assert present_classes(cls).tolist() == [3]
    det = DetDataSample()
    det.gt_instances = InstanceData(labels=torch.tensor([5, 2, 5]))
    assert present_classes(det).tolist() == [2, 5]
    seg = SegDataSample()
    seg.gt_sem_seg = PixelData(data=torch.tensor([[[0, 255], [4, 4]]]))
    assert present_classes(seg).tolist() == [0, 4]
    with pytest.raises(ValueError, match='no labels the probe knows'):
        present_classes(DetDataSample())


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match='Linear has no FCA layer'):
        CellReadingProbe(torch.nn.Linear(2, 2), 3)
    model = torch.nn.Sequential(MultiSpectralAttention(8, 7, 7, 4))
    probe = CellReadingProbe(model, 3)
    with pytest.raises(ValueError, match=r'Label 3 is not a class in '
                       r'\[0, 3\)'):
        probe.update([torch.tensor([3])])
    with pytest.raises(ValueError, match='labels of the 2 images'):
        model(torch.randn(2, 8, 7, 7))
    probe.update([torch.tensor([0])] * 3)
    model(torch.randn(3, 8, 7, 7))
    # each batch's labels are read once: a second pass needs its own
    with pytest.raises(ValueError, match='labels of the 3 images of each '
                       'batch before its forward pass'):
        model(torch.randn(3, 8, 7, 7))
    with pytest.raises(ValueError, match='present in at least 2 and absent '
                       'from at least 2 of the 3 probed images'):
        probe.scores()
