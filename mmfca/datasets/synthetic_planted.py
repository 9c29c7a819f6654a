# Copyright (c) mmfca contributors. All rights reserved.
"""A two-class set whose class only known DCT cells can read, each with a
known strength: the ground truth of a frequency ranking.

What a cell (u, v) reads: FcaNet's filter at a stage with an N x N map
(N = 56, 28, 14, 7 for 224-px inputs) is the N-point DCT basis of frequency
``(u * N / 7, v * N / 7)``, i.e. ``u`` half periods per 7 map pixels at
every stage. On the last stage (stride 32, a 7x7 map on 224 px) that is
``u`` half periods over the whole image. So a contrast layout of ``u``
half periods over the image is read by the last stage's cell (u, v); an
earlier stage would read it only with the cell (u / 2, v / 2) (stride 16),
(u / 4, v / 4) (stride 8), ..., which is not a cell unless ``u`` and ``v``
are both even. The planted cells are therefore the 33 with an odd ``u`` or
``v``: each is read by one cell of the grid, at the last stage, and the 16
others (``u`` and ``v`` both even, (0, 0) among them) read nothing.

Every image is a noise texture whose local contrast follows one layout,
``contrast(i, j) = 1 + s * d * P(i, j)``, ``P = sum_c r_c w_c B_c`` over the
planted cells (``B_c`` the cell's basis image over the whole image, ``w_c``
its strength, ``r_c`` a random sign, ``P`` scaled to unit RMS). The class is
the sign ``s`` (``pos``/``neg``); the depth ``d`` is drawn per image in
``[0, depth]``, so a cell's accuracy grows smoothly with its strength
instead of jumping from chance to 100 %. Overall contrast, brightness and
colour are random, and ``P`` sums to zero: global average pooling, the
(0, 0) cell, sees nothing of the class. This is what the squeeze reads of
the image's local contrast, linearly; a trained network is not linear, and
its convolutions can move a layout to other frequencies (zero padding tells
them where they are), so a cell that reads nothing here can still learn the
class. The benchmark (``benchmarks/bench_frequency_fitting.py``) measures
how far. ImageNet-style folders for
MMPretrain's ``CustomDataset``, the design in ``ROOT/planted.json``::

    ROOT/{train,val}/{pos,neg}/<n>.png
"""
import json
import math
import os
import os.path as osp
import random

import numpy as np
from PIL import Image

#: The class (folder) names: the sign of the planted layout.
PLANTED_CLASSES = ('pos', 'neg')


def planted_cells(seed=0, weakest=0.1):
    """The planted design: the 33 cells with an odd ``u`` or ``v``, in a
    random order, strengths evenly from 1 down to ``weakest``, random
    signs.

    Returns:
        list[tuple[tuple[int, int], float, int]]: ``(cell, strength,
        sign)``, strongest first.
    """
    rng = random.Random(seed)
    cells = [(u, v) for u in range(7) for v in range(7) if u % 2 or v % 2]
    rng.shuffle(cells)
    strengths = np.linspace(1.0, weakest, len(cells)).tolist()
    return [(c, w, rng.choice((1, -1))) for c, w in zip(cells, strengths)]


def planted_layout(design, size):
    """``P``: the signed, weighted sum of the design's basis images over a
    ``size`` x ``size`` image, scaled to unit RMS."""
    pos = (np.arange(size) + 0.5) / size
    layout = np.zeros((size, size))
    for (u, v), strength, sign in design:
        layout += sign * strength * np.outer(np.cos(math.pi * u * pos),
                                             np.cos(math.pi * v * pos))
    return layout / layout.std()


def make_planted_frequency_set(root: str, num_train: int = 512,
                               num_val: int = 256, seed: int = 0,
                               img_size: int = 224, depth: float = 0.2,
                               design_seed: int = 0) -> str:
    """Write ``train/`` and ``val/`` class folders and ``planted.json``
    under ``root``, the classes in turn.

    Args:
        root (str): Dataset root.
        num_train (int): Training images.
        num_val (int): Validation images.
        seed (int): Random seed of the images (val uses ``seed + 1``).
        img_size (int): Square image side; 224 gives FcaNet's last stage a
            7x7 map, the grid itself. Defaults to 224.
        depth (float): The largest contrast modulation (RMS of ``d * P``);
            each image draws ``d`` in ``[0, depth]``. Defaults to 0.2.
        design_seed (int): Seed of :func:`planted_cells`. Defaults to 0.

    Returns:
        str: ``root``.
    """
    if not 0 < depth <= 1:
        raise ValueError(f'depth {depth} must be in (0, 1].')
    design = planted_cells(design_seed)
    layout = planted_layout(design, img_size)
    for split, num, split_seed in (('train', num_train, seed),
                                   ('val', num_val, seed + 1)):
        rng = np.random.default_rng(split_seed)
        for name in PLANTED_CLASSES:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
        for i in range(num):
            sign = 1 - 2 * (i % 2)
            contrast = np.clip(1 + sign * rng.uniform(0, depth) * layout, 0,
                               None)
            noise = rng.normal(size=(img_size, img_size, 3))
            sigma = rng.uniform(25, 45)  # overall contrast: no class
            mean = rng.uniform(100, 156, size=3)  # brightness, colour: none
            img = mean + sigma * contrast[..., None] * noise
            Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)) \
                .save(osp.join(root, split, PLANTED_CLASSES[i % 2],
                               f'{i:06d}.png'))
    with open(osp.join(root, 'planted.json'), 'w') as f:
        json.dump(dict(cells=[list(c) for c, _, _ in design],
                       strengths=[w for _, w, _ in design],
                       signs=[s for _, _, s in design], depth=depth,
                       img_size=img_size), f)
    return root
