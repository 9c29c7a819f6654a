# Copyright (c) mmfca contributors. All rights reserved.
"""Deterministic synthetic sets for classification and segmentation.

* ImageNet-style folders for MMPretrain's ``CustomDataset``: one shape per
  image; 6 classes (3 shapes x filled/outlined, so top-5 means something)::

      ROOT/{train,val}/<class>/<n>.png

* MMSegmentation's ``BaseSegDataset`` layout: images of 1-5 shapes and
  label PNGs (0 background, k+1 for shape class k)::

      ROOT/img_dir/{train,val}/<n>.jpg
      ROOT/ann_dir/{train,val}/<n>.png
"""
import os
import os.path as osp

import numpy as np
from PIL import Image

from .synthetic_shapes import CLASSES, draw_shapes_image

CLS_CLASSES = tuple(CLASSES) + tuple(f'{c}_outline' for c in CLASSES)
SEG_CLASSES = ('background', ) + tuple(CLASSES)


def _splits(num_train, num_val, seed):
    """(split name, image count, generator); val is seeded ``seed + 1``."""
    for split, num, split_seed in (('train', num_train, seed),
                                   ('val', num_val, seed + 1)):
        yield split, num, np.random.default_rng(split_seed)


def make_synthetic_imagenet(root: str, num_train: int = 36,
                            num_val: int = 12, seed: int = 0,
                            img_size: int = 64) -> str:
    """Write ``train/`` and ``val/`` class folders under ``root``.

    Args:
        root (str): Dataset root.
        num_train (int): Training images (spread over the 6 classes).
        num_val (int): Validation images.
        seed (int): Random seed (val uses ``seed + 1``).
        img_size (int): Square image side.

    Returns:
        str: ``root``.
    """
    for split, num, rng in _splits(num_train, num_val, seed):
        for name in CLS_CLASSES:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
        for i in range(num):
            outline = bool(i % 2)
            img, _, labels, _ = draw_shapes_image(
                rng, img_size, img_size, 1, outline=outline)
            name = CLS_CLASSES[labels[0] + len(CLASSES) * outline]
            Image.fromarray(img).save(
                osp.join(root, split, name, f'{i:06d}.png'))
    return root


def make_synthetic_segmentation(root: str, num_train: int = 8,
                                num_val: int = 4, seed: int = 0,
                                img_size: int = 64) -> str:
    """Write images and label maps in MMSegmentation's layout.

    Args:
        root (str): Dataset root.
        num_train (int): Training images.
        num_val (int): Validation images.
        seed (int): Random seed (val uses ``seed + 1``).
        img_size (int): Square image side.

    Returns:
        str: ``root``.
    """
    for split, num, rng in _splits(num_train, num_val, seed):
        img_dir = osp.join(root, 'img_dir', split)
        ann_dir = osp.join(root, 'ann_dir', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(num):
            img, owner, labels, _ = draw_shapes_image(
                rng, img_size, img_size, 5)
            lut = np.array([0] + [label + 1 for label in labels],
                           dtype=np.uint8)
            Image.fromarray(img).save(osp.join(img_dir, f'{i:06d}.jpg'),
                                      quality=95)
            Image.fromarray(lut[owner + 1]).save(
                osp.join(ann_dir, f'{i:06d}.png'))
    return root
