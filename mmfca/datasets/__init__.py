# Copyright (c) mmfca contributors. All rights reserved.
from .checks import check_data_paths
from .synthetic_cls_seg import (CLS_CLASSES, SEG_CLASSES,
                                make_synthetic_imagenet,
                                make_synthetic_segmentation)
from .synthetic_coco import make_synthetic_coco
from .synthetic_planted import (PLANTED_CLASSES, make_planted_frequency_set,
                                planted_cells)
from .synthetic_shapes import CLASSES as SYNTHETIC_COCO_CLASSES
from .transforms import OrientationPad

__all__ = [
    'check_data_paths', 'make_synthetic_coco', 'make_synthetic_imagenet',
    'make_synthetic_segmentation', 'CLS_CLASSES', 'SEG_CLASSES',
    'SYNTHETIC_COCO_CLASSES', 'OrientationPad', 'PLANTED_CLASSES',
    'make_planted_frequency_set', 'planted_cells'
]
