"""The planted-frequency set: the class is read by the planted cells of the
last stage's 7x7 grid, each by its strength, and by nothing else."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from mmfca.datasets import (PLANTED_CLASSES, make_planted_frequency_set,
                            planted_cells)


def dct7(blocks):
    """The orthonormal 7x7 DCT-II of a 7x7 array, from the formula."""
    def basis(f):
        scale = math.sqrt((1 if f == 0 else 2) / 7)
        return scale * np.cos(math.pi * f * (np.arange(7) + 0.5) / 7)
    return np.array([[basis(u) @ blocks @ basis(v) for v in range(7)]
                     for u in range(7)])


def last_stage_reading(img):
    """What the last stage's cells see of an image's layout: its local
    contrast (squared deviation from the image's mean) averaged over 32x32
    blocks (the 7x7 map of a stride-32 stage on 224 px), relative to its
    mean, then its 7x7 DCT."""
    x = img.astype(float).mean(-1)
    energy = ((x - x.mean())**2).reshape(7, 32, 7, 32).mean((1, 3))
    return dct7(energy / energy.mean())


def test_design_is_the_33_cells_read_only_at_the_last_stage():
    design = planted_cells()
    cells = [c for c, _, _ in design]
    assert len(cells) == len(set(cells)) == 33
    # u or v odd: no earlier stage (frequencies u / 2, u / 4, ... per 7
    # map pixels) has a cell for it; (0, 0) is not planted
    assert all(u % 2 or v % 2 for u, v in cells)
    strengths = [w for _, w, _ in design]
    assert strengths[0] == 1 and strengths[-1] == pytest.approx(0.1)
    assert np.all(np.diff(strengths) < 0)
    assert {s for _, _, s in design} == {1, -1}
    assert planted_cells() == design and planted_cells(1) != design


def test_the_class_is_read_by_the_planted_cells_by_their_strength(
        tmp_path):
    root = make_planted_frequency_set(str(tmp_path), num_train=96,
                                      num_val=8, seed=0)
    assert root == str(tmp_path)
    for split, num in (('train', 96), ('val', 8)):
        counts = [len(list((tmp_path / split / n).iterdir()))
                  for n in PLANTED_CLASSES]
        assert counts == [num // 2] * 2
    with open(tmp_path / 'planted.json') as f:
        saved = json.load(f)
    design = planted_cells()
    assert [tuple(c) for c in saved['cells']] == [c for c, _, _ in design]
    assert saved['depth'] == 0.2 and saved['img_size'] == 224
    # the difference of the class means of each cell's reading
    readings = {}
    means, contrasts = {}, {}
    for name in PLANTED_CLASSES:
        paths = sorted((tmp_path / 'train' / name).iterdir())
        imgs = [np.asarray(Image.open(p)) for p in paths]
        assert all(i.shape == (224, 224, 3) and i.dtype == np.uint8
                   for i in imgs)
        readings[name] = np.mean([last_stage_reading(i) for i in imgs], 0)
        means[name] = [i.mean() for i in imgs]
        contrasts[name] = [i.std() for i in imgs]
    diff = readings['pos'] - readings['neg']
    planted = np.array([diff[c] * s for c, _, s in design])
    # what a cell of strength w reads of its own basis image, 32x32-block
    # averaged: w times the block mean's attenuation of that frequency
    pos = (np.arange(224) + 0.5) / 224
    expected = np.array([w * dct7(np.outer(
        np.cos(math.pi * u * pos), np.cos(math.pi * v * pos)).reshape(
            7, 32, 7, 32).mean((1, 3)))[u, v] for (u, v), w, _ in design])
    # every planted cell reads its sign, in proportion to its strength
    assert np.all(planted > 0)
    assert np.corrcoef(planted, expected)[0, 1] > 0.95
    # the cells not planted read nothing: below the weakest planted one
    others = [abs(diff[u, v]) for u in range(7) for v in range(7)
              if (u, v) not in dict((c, 0) for c, _, _ in design)]
    assert len(others) == 16 and max(others) < planted.min()
    # what GAP sees (brightness, overall contrast) varies within a class
    # as much as between the classes
    for stat in (means, contrasts):
        gap = abs(np.mean(stat['pos']) - np.mean(stat['neg']))
        assert gap < 0.5 * np.std(stat['pos'] + stat['neg'])
    # same seed, same images
    again = make_planted_frequency_set(str(tmp_path / 'again'), num_train=2,
                                       num_val=8, seed=0)
    first = sorted((tmp_path / 'val').rglob('*.png'))
    assert all(np.array_equal(np.asarray(Image.open(a)), np.asarray(
        Image.open(str(a).replace(str(tmp_path), again)))) for a in first)


def test_depth_is_checked(tmp_path):
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf'depth {bad} must be in '
                           r'\(0, 1\]'):
            make_planted_frequency_set(str(tmp_path), depth=bad)
