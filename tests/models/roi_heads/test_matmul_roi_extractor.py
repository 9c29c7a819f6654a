# Copyright (c) mmfca contributors. All rights reserved.
"""MatmulRoIAlign against mmcv's RoIAlign; the extractor in a detector."""
import copy

import pytest
import torch
from mmcv.ops import RoIAlign

from mmfca.models.roi_heads import (MatmulRoIAlign, MatmulRoIExtractor,
                                    roi_align_matrix)


def _rois(num, num_images, extent, seed):
    """Boxes of 1..60 px, some crossing or beyond the image border."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g) * (extent + 40) - 20
    wh = torch.rand(num, 2, generator=g) * 60 + 1
    ids = torch.randint(0, num_images, (num, 1), generator=g).float()
    return torch.cat([ids, xy, xy + wh], 1)


@pytest.mark.parametrize('output_size,scale,ratio,size', [
    (7, 1 / 8, 2, (16, 16)),
    (14, 1 / 4, 2, (24, 20)),
    ((7, 5), 1 / 16, 1, (5, 9)),
    (7, 1 / 32, 3, (3, 3)),
])
def test_equals_mmcv_forward_and_gradient(output_size, scale, ratio, size):
    h, w = size
    feats = torch.randn(3, 6, h, w, generator=torch.Generator().manual_seed(1))
    rois = _rois(40, 2, int(h / scale), seed=2)  # image 2 has no RoI
    ref = RoIAlign(output_size, scale, sampling_ratio=ratio)
    ours = MatmulRoIAlign(output_size, scale, sampling_ratio=ratio)
    x_ref = feats.clone().requires_grad_()
    x_ours = feats.clone().requires_grad_()
    out_ref, out_ours = ref(x_ref, rois), ours(x_ours, rois)
    assert out_ours.shape == out_ref.shape
    torch.testing.assert_close(out_ours, out_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out_ref)
    out_ref.backward(grad)
    out_ours.backward(grad)
    # the corners of a 3x3 map sum hundreds of terms: float32 round-off
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    assert x_ours.grad[2].abs().max() == 0


def test_matrix_rows_are_bin_averages():
    # a RoI over feature pixels 0..4 (pixel centres after aligned=True's
    # half-pixel shift), 2x2 bins of 2x2 samples: bin (0, 0) samples x, y
    # in {0.5, 1.5}, i.e. pixels 0, 1, 2 weighted 1/4, 1/2, 1/4 per axis
    rois = torch.tensor([[0.5, 0.5, 4.5, 4.5]])
    m = roi_align_matrix(rois, (2, 2), 1.0, 2, 6, 6)
    assert m.shape == (4, 36)
    torch.testing.assert_close(m.sum(1), torch.ones(4))
    axis = torch.tensor([0.25, 0.5, 0.25, 0, 0, 0])
    torch.testing.assert_close(m[0].view(6, 6), axis[:, None] * axis)
    # bin (1, 1): samples at 2.5, 3.5 -> pixels 2, 3, 4
    torch.testing.assert_close(m[3].view(6, 6),
                               axis.roll(2)[:, None] * axis.roll(2))


@pytest.mark.parametrize('kwargs', [
    dict(sampling_ratio=0), dict(sampling_ratio=2, pool_mode='max'),
    dict(sampling_ratio=2, aligned=False),
    dict(sampling_ratio=2, max_matrix_elements=10)
])
def test_other_cases_run_mmcv(kwargs):
    feats = torch.randn(2, 4, 12, 12)
    rois = _rois(10, 2, 96, seed=3)
    ref_kwargs = {k: v for k, v in kwargs.items()
                  if k != 'max_matrix_elements'}
    torch.testing.assert_close(
        MatmulRoIAlign(7, 1 / 8, **kwargs)(feats, rois),
        RoIAlign(7, 1 / 8, **ref_kwargs)(feats, rois), rtol=0, atol=0)


def test_extractor_builds_matmul_layers_and_keeps_others():
    from mmdet.registry import MODELS
    cfg = dict(type='MatmulRoIExtractor',
               roi_layer=dict(type='RoIAlign', output_size=7,
                              sampling_ratio=2),
               out_channels=8, featmap_strides=[8, 16])
    ext = MODELS.build(cfg)
    assert isinstance(ext, MatmulRoIExtractor)
    assert all(type(layer) is MatmulRoIAlign for layer in ext.roi_layers)
    assert [layer.spatial_scale for layer in ext.roi_layers] == [1 / 8, 1 / 16]
    cfg['roi_layer'] = dict(type='RoIPool', output_size=7)
    assert type(MODELS.build(cfg).roi_layers[0]).__name__ == 'RoIPool'


def test_mask_rcnn_losses_and_gradients_unchanged(synthetic_coco):
    """The demo's Mask R-CNN: same losses and gradients with either
    extractor, on a real batch from the synthetic COCO set."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.runner import Runner, set_random_seed

    from _helpers import DEMO_CONFIG
    cfg = Config.fromfile(DEMO_CONFIG)
    root = synthetic_coco + '/'
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.batch_size = 2
    torch.manual_seed(0)
    models = []
    for extractor in ('SingleRoIExtractor', 'MatmulRoIExtractor'):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.roi_head.bbox_roi_extractor.type = extractor
        model_cfg.roi_head.mask_roi_extractor.type = extractor
        models.append(MODELS.build(model_cfg))
    models[1].load_state_dict(models[0].state_dict())
    assert type(models[1].roi_head.bbox_roi_extractor.roi_layers[0]) is \
        MatmulRoIAlign
    # the pipeline's random transforms draw from numpy's and python's
    # global generators in this process (num_workers=0): seeded, one batch
    set_random_seed(0)
    batch = next(iter(Runner.build_dataloader(
        dict(cfg.train_dataloader, num_workers=0), seed=0)))
    grads, losses = [], []
    for model in models:
        model.train()
        torch.manual_seed(1)  # the same RPN/RoI sampling
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        loss_dict = model(**data, mode='loss')
        loss, _ = model.parse_losses(loss_dict)
        loss.backward()
        losses.append(loss.detach())
        grads.append(model.neck.fpn_convs[0].conv.weight.grad.clone())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)
