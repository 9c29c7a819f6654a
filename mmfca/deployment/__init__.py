# Copyright (c) mmfca contributors. All rights reserved.
from .mask_paste import masks_pasted_per_box, paste_masks_per_box
from .mmdeploy_shims import mmdeploy_export_shims

__all__ = [
    'masks_pasted_per_box', 'mmdeploy_export_shims', 'paste_masks_per_box'
]
