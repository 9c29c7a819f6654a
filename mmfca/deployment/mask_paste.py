# Copyright (c) mmfca contributors. All rights reserved.
"""MMDeploy's backend model pasting masks over each box, as MMDetection
does on the CPU.

MMDeploy's ``End2EndModel.postprocessing_masks`` (mmdet codebase) samples
each 28x28 mask over the whole image, one full-image ``grid_sample`` per
detection; MMDetection's ``FCNMaskHead`` over its box only
(``_do_paste_mask`` with ``skip_empty``). Beyond a pixel around the box
the whole-image sample stays below 0.5: the binary masks are the same, the
pasting far cheaper (benchmarks/RESULTS.md, deployment).
"""
import contextlib

import torch


def paste_masks_per_box(det_bboxes, det_masks, img_w: int, img_h: int,
                        device: str = 'cpu') -> torch.Tensor:
    """MMDeploy's ``postprocessing_masks`` with MMDetection's pasting:
    boxes (N, 4) in pixels and mask probabilities (N, h, w), tensors or
    arrays, to binary masks (N, img_h, img_w), probability >= 0.5
    (MMDeploy's threshold)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import \
        _do_paste_mask
    boxes, masks = (torch.as_tensor(x, device=device).float()
                    for x in (det_bboxes, det_masks))
    out = torch.zeros(len(masks), img_h, img_w, dtype=torch.bool,
                      device=device)
    for i in range(len(masks)):
        mask, region = _do_paste_mask(masks[i:i + 1, None], boxes[i:i + 1],
                                      img_h, img_w, skip_empty=True)
        out[(i, ) + region] = mask[0] >= 0.5
    return out


@contextlib.contextmanager
def masks_pasted_per_box():
    """MMDeploy's mmdet backend models paste with
    :func:`paste_masks_per_box` inside the ``with`` block."""
    from mmdeploy.codebase.mmdet.deploy.object_detection_model import \
        End2EndModel
    own = End2EndModel.__dict__['postprocessing_masks']
    End2EndModel.postprocessing_masks = staticmethod(paste_masks_per_box)
    try:
        yield
    finally:
        End2EndModel.postprocessing_masks = own
