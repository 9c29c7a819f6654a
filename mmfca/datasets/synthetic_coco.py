# Copyright (c) mmfca contributors. All rights reserved.
"""A deterministic synthetic COCO-style detection/instance set.

Images of coloured shapes (rectangles, ellipses, triangles) on a noisy
background, 1-5 instances per image, overlaps allowed (later shapes occlude
earlier ones; masks and boxes are the visible parts), written in COCO's
file layout so every stage of the real pipeline runs on real files.
Optionally, instances that show less than a given fraction of their shape
are written as crowd (``iscrowd=1``) annotations: COCO's ignore regions,
as CityPersons ignores its heavily occluded pedestrians::

    ROOT/annotations/instances_train2017.json
    ROOT/annotations/instances_val2017.json
    ROOT/train2017/000000000001.jpg ...
    ROOT/val2017/...
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .synthetic_shapes import CLASSES, draw_shapes_image

MIN_VISIBLE_PIXELS = 30


def make_split(root: str, split: str, num_images: int, seed: int,
               img_size: Sequence[int] = (160, 160),
               max_instances: int = 5,
               ignore_visible_below: float = 0.) -> Dict:
    """Write one split (images + ``annotations/instances_{split}.json``).

    Instances with fewer than :data:`MIN_VISIBLE_PIXELS` visible pixels are
    not annotated at all.

    Args:
        root (str): Dataset root.
        split (str): Folder/annotation name, e.g. ``'train2017'``.
        num_images (int): Number of images.
        seed (int): Random seed; the same seed writes the same files.
        img_size (Sequence[int]): ``(height, width)``.
        max_instances (int): At most this many shapes per image (>= 1).
        ignore_visible_below (float): Instances showing less than this
            fraction of their shape get ``iscrowd=1``: COCO evaluation
            counts a detection of them neither as a hit nor as a false
            positive, and MMDetection leaves them out of the training
            targets (``ignored_instances``). ``0`` (the default) marks
            none. Must be in ``[0, 1)``.

    Returns:
        dict: The COCO annotation dict that was written; its ``info``
        records the arguments that decide its content.
    """
    if not 0 <= ignore_visible_below < 1:
        raise ValueError(f'ignore_visible_below must be in [0, 1), got '
                         f'{ignore_visible_below!r}')
    rng = np.random.default_rng(seed)
    height, width = img_size
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        img, owner, labels, areas = draw_shapes_image(
            rng, height, width, max_instances)
        file_name = f'{img_id:012d}.jpg'
        Image.fromarray(img).save(osp.join(root, split, file_name),
                                  quality=95)
        images.append(dict(id=img_id, file_name=file_name, height=height,
                           width=width))
        for k, label in enumerate(labels):
            visible = owner == k
            num_visible = int(visible.sum())
            if num_visible < MIN_VISIBLE_PIXELS:
                continue  # fully or almost fully occluded
            crowd = num_visible < ignore_visible_below * areas[k]
            rle = mask_utils.encode(np.asfortranarray(visible.astype(
                np.uint8)))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            rle['counts'] = rle['counts'].decode('ascii')
            annotations.append(dict(
                id=len(annotations) + 1, image_id=img_id,
                category_id=label + 1, segmentation=rle,
                area=float(mask_utils.area(rle)), bbox=[x, y, w, h],
                iscrowd=int(crowd)))
    coco = dict(
        info=dict(description=f'mmfca synthetic shapes, seed {seed}',
                  mmfca=dict(seed=seed, img_size=[height, width],
                             max_instances=max_instances,
                             ignore_visible_below=ignore_visible_below)),
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, name in enumerate(CLASSES)])
    tmp = osp.join(root, 'annotations', f'.instances_{split}.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(coco, f)
    os.replace(tmp, osp.join(root, 'annotations', f'instances_{split}.json'))
    return coco


def make_synthetic_coco(root: str, num_train: int = 64, num_val: int = 16,
                        seed: int = 0, img_size: Sequence[int] = (160, 160),
                        max_instances: int = 5,
                        ignore_visible_below: float = 0.) -> str:
    """Write ``train2017`` and ``val2017`` splits under ``root``.

    Args:
        root (str): Dataset root (created if missing).
        num_train (int): Training images. Defaults to 64.
        num_val (int): Validation images. Defaults to 16.
        seed (int): Seed; val uses ``seed + 1``. Defaults to 0.
        img_size (Sequence[int]): ``(height, width)``. Defaults to 160x160.
        max_instances (int): Instances per image are 1..this. Defaults to 5.
        ignore_visible_below (float): Instances showing less than this
            fraction of their shape are crowd (ignore) annotations; see
            :func:`make_split`. Defaults to 0 (none).

    Returns:
        str: ``root``.
    """
    make_split(root, 'train2017', num_train, seed, img_size, max_instances,
               ignore_visible_below)
    make_split(root, 'val2017', num_val, seed + 1, img_size, max_instances,
               ignore_visible_below)
    return root
