"""The planted-frequency classification set."""
import math

import numpy as np
import pytest
from PIL import Image

from mmfca.datasets import (PLANTED_CELLS, make_planted_frequency_set,
                            planted_class_names)


def cell_energy(img, size):
    """The DCT coefficients (7x7 grid) of an image's local contrast: the
    squared deviation from the image's mean, 8x8 box-averaged."""
    x = img.astype(float).mean(-1)
    energy = (x - x.mean())**2
    blocks = energy.reshape(size // 8, 8, size // 8, 8).mean((1, 3))
    n = size // 8
    pos = (np.arange(n) + 0.5) / n
    basis = [np.cos(math.pi * f * pos) for f in range(7)]
    return np.array([[(blocks * np.outer(basis[u], basis[v])).sum()
                      for v in range(7)] for u in range(7)])


def test_classes_differ_only_in_their_cell(tmp_path):
    root = make_planted_frequency_set(str(tmp_path), num_train=16,
                                      num_val=8, seed=0, img_size=64)
    names = planted_class_names()
    assert names == ('u0_v2_pos', 'u0_v2_neg', 'u2_v0_pos', 'u2_v0_neg',
                     'u1_v3_pos', 'u1_v3_neg', 'u3_v1_pos', 'u3_v1_neg')
    for split, num in (('train', 16), ('val', 8)):
        counts = [len(list((tmp_path / split / n).iterdir())) for n in names]
        assert counts == [num // 8] * 8
    means, contrasts = [], []
    for k, name in enumerate(names):
        cell, sign = PLANTED_CELLS[k // 2], (1, -1)[k % 2]
        for path in sorted((tmp_path / 'train' / name).iterdir()):
            img = np.asarray(Image.open(path))
            assert img.shape == (64, 64, 3) and img.dtype == np.uint8
            coef = cell_energy(img, 64)
            coef[0, 0] = 0  # the overall contrast
            # the largest coefficient is the class's cell, with its sign
            assert np.unravel_index(np.abs(coef).argmax(), coef.shape) == \
                cell and np.sign(coef[cell]) == sign
            means.append(img.mean())
            contrasts.append(img.std())
    # what GAP sees varies from image to image within a class as much as
    # between classes (random brightness and overall contrast)
    assert np.ptp(means) > 10 and np.ptp(contrasts) > 5
    assert root == str(tmp_path)
    # same seed, same images
    again = make_planted_frequency_set(str(tmp_path / 'again'),
                                       num_train=16, num_val=8, seed=0,
                                       img_size=64)
    first = sorted((tmp_path / 'val').rglob('*.png'))
    assert [np.array_equal(np.asarray(Image.open(a)), np.asarray(
        Image.open(str(a).replace(str(tmp_path), again)))) for a in first] \
        == [True] * 8


def test_planted_cells_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r'Planted cell \(0, 0\) must be'):
        make_planted_frequency_set(str(tmp_path), cells=[(0, 0), (1, 1)])
    with pytest.raises(ValueError, match=r'Planted cell \(7, 1\) must be'):
        make_planted_frequency_set(str(tmp_path), cells=[(7, 1)])
