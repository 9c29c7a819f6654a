# Copyright (c) mmfca contributors. All rights reserved.
from .checks import check_data_paths
from .synthetic_coco import CLASSES as SYNTHETIC_COCO_CLASSES
from .synthetic_coco import make_synthetic_coco

__all__ = ['check_data_paths', 'make_synthetic_coco', 'SYNTHETIC_COCO_CLASSES']
