# Copyright (c) mmfca contributors. All rights reserved.
from .matmul_roi_extractor import (MatmulRoIAlign, MatmulRoIExtractor,
                                   roi_align_matrix)

__all__ = ['MatmulRoIAlign', 'MatmulRoIExtractor', 'roi_align_matrix']
