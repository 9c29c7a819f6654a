# Copyright (c) mmfca contributors. All rights reserved.
"""A classification set whose classes only known DCT cells tell apart.

Every image is the same kind of noise texture whose local contrast follows
the 2D DCT basis image of one cell ``(u, v)`` of the 7x7 grid over the whole
image, ``contrast(i, j) = 1 + s * depth * B[u, v](i, j) / max|B|``; the
class is the pair (cell, sign ``s``), two classes per planted cell. The
two classes of a cell have the same local statistics (stripes of the same
orientation and period): only where the contrast is high, the image's
absolute layout, tells them apart, and the squeeze with that cell reads it
directly (``+A`` or ``-A``) while the other cells, orthogonal to it, read
nothing. A basis image other than (0, 0) sums to zero, so the image's
overall contrast, brightness and colour (what global average pooling, the
(0, 0) cell, sees) carry nothing about the class. The ground truth of a
frequency ranking: the planted cells first. ImageNet-style folders for
MMPretrain's ``CustomDataset``::

    ROOT/{train,val}/u{u}_v{v}_{pos,neg}/<n>.png
"""
import math
import os
import os.path as osp

import numpy as np
from PIL import Image

#: The cells planted by default ((0, 0) excluded: it is GAP).
PLANTED_CELLS = ((0, 2), (2, 0), (1, 3), (3, 1))


def planted_class_names(cells=PLANTED_CELLS):
    """The class (folder) names: ``u{u}_v{v}_pos``, ``u{u}_v{v}_neg`` per
    cell."""
    return tuple(f'u{u}_v{v}_{sign}' for u, v in cells
                 for sign in ('pos', 'neg'))


def planted_image(rng, cell, sign, size, depth=0.5):
    """One image of the class ``(cell, sign)``: (size, size, 3) uint8.

    Args:
        rng (numpy.random.Generator): The random source.
        cell (tuple[int, int]): ``(u, v)`` on the 7x7 grid, u the height
            frequency: ``u`` half periods over the image's height.
        sign (int): 1 or -1: the contrast follows ``B`` or ``-B``.
        size (int): Image side.
        depth (float): Contrast modulation depth in (0, 1]. Defaults to 0.5.
    """
    pos = (np.arange(size) + 0.5) / size
    u, v = cell
    basis = np.outer(np.cos(math.pi * u * pos), np.cos(math.pi * v * pos))
    contrast = 1 + sign * depth * basis / np.abs(basis).max()
    noise = rng.normal(size=(size, size, 3))
    sigma = rng.uniform(25, 45)  # overall contrast: no class information
    mean = rng.uniform(100, 156, size=3)  # brightness and colour: none
    img = mean + sigma * contrast[..., None] * noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_planted_frequency_set(root: str, cells=PLANTED_CELLS,
                               num_train: int = 512, num_val: int = 256,
                               seed: int = 0, img_size: int = 64,
                               depth: float = 0.5) -> str:
    """Write ``train/`` and ``val/`` class folders under ``root``, the
    classes in turn (equal counts when ``2 * len(cells)`` divides).

    Args:
        root (str): Dataset root.
        cells (Sequence[tuple[int, int]]): The planted cells, two classes
            each, none of them (0, 0). Defaults to :data:`PLANTED_CELLS`.
        num_train (int): Training images.
        num_val (int): Validation images.
        seed (int): Random seed (val uses ``seed + 1``).
        img_size (int): Square image side.
        depth (float): Contrast modulation depth in (0, 1]. Defaults to
            0.5.

    Returns:
        str: ``root``.
    """
    cells = [tuple(c) for c in cells]
    for u, v in cells:
        if not (0 <= u < 7 and 0 <= v < 7) or (u, v) == (0, 0):
            raise ValueError(f'Planted cell {(u, v)} must be on the 7x7 '
                             'grid and not (0, 0) (GAP sees it).')
    names = planted_class_names(cells)
    for split, num, split_seed in (('train', num_train, seed),
                                   ('val', num_val, seed + 1)):
        rng = np.random.default_rng(split_seed)
        for name in names:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
        for i in range(num):
            k = i % len(names)
            img = planted_image(rng, cells[k // 2], 1 - 2 * (k % 2),
                                img_size, depth)
            Image.fromarray(img).save(
                osp.join(root, split, names[k], f'{i:06d}.png'))
    return root
