# Copyright (c) mmfca contributors. All rights reserved.
"""MatmulRoIAlign under graph capture: traced or exported, it runs mmcv's
RoIAlign, so the graph computes RoIAlign for boxes other than the example's
(the matrix path's Python loop over images and its size check would freeze
the example's structure into the graph)."""
import inspect

import pytest
import torch
import torch.nn as nn
from mmcv.ops import RoIAlign

from mmfca.models.roi_heads import MatmulRoIAlign


def _boxes(num, num_images, seed, low=1, high=60, extent=128):
    """``(num, 5)`` RoIs (image index, x1, y1, x2, y2) of ``low``-``high``
    px sides; some cross or lie beyond the border of an ``extent`` image."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g) * (extent + 40) - 20
    wh = torch.rand(num, 2, generator=g) * (high - low) + low
    ids = torch.randint(0, num_images, (num, 1), generator=g).float()
    return torch.cat([ids, xy, xy + wh], 1)


def test_traced_layer_computes_roi_align_for_other_boxes():
    """Traced on 6 boxes of image 0, the graph pools 23 boxes of two images
    as mmcv's op does (the matrix path left image 1's rows unwritten)."""
    feats = torch.randn(2, 8, 16, 16,
                        generator=torch.Generator().manual_seed(0))
    layer = MatmulRoIAlign(7, 1 / 8, sampling_ratio=2)
    ref = RoIAlign(7, 1 / 8, sampling_ratio=2)
    example = _boxes(6, 1, seed=1)
    traced = torch.jit.trace(layer, (feats, example))
    for rois in (_boxes(23, 2, seed=2), example):
        out = traced(feats, rois)
        assert out.shape == (len(rois), 8, 7, 7)
        torch.testing.assert_close(out, ref(feats, rois), rtol=0, atol=0)
    # eager, outside the trace, it is the matrix product again: equal to
    # mmcv's op to round-off, not bit for bit
    rois = _boxes(23, 2, seed=2)
    eager = layer(feats, rois)
    torch.testing.assert_close(eager, ref(feats, rois), rtol=1e-5, atol=1e-5)
    assert not torch.equal(eager, ref(feats, rois))


def test_compiled_layer_computes_roi_align_for_other_boxes():
    """Under torch.compile the layer runs mmcv's op: bit-equal to it (the
    matrix product is equal only to round-off, see above)."""
    feats = torch.randn(2, 8, 16, 16,
                        generator=torch.Generator().manual_seed(0))
    layer = MatmulRoIAlign(7, 1 / 8, sampling_ratio=2)
    ref = RoIAlign(7, 1 / 8, sampling_ratio=2)
    compiled = torch.compile(layer, backend='eager')
    for rois in (_boxes(6, 1, seed=1), _boxes(23, 2, seed=2)):
        torch.testing.assert_close(compiled(feats, rois), ref(feats, rois),
                                   rtol=0, atol=0)


def _demo_model():
    """The demo's Mask R-CNN FcaNet-18 (MatmulRoIExtractor), random
    weights, eval mode."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from _helpers import DEMO_CONFIG
    cfg = Config.fromfile(DEMO_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    assert type(model.roi_head.bbox_roi_extractor.roi_layers[0]) is \
        MatmulRoIAlign
    return model


def _proposals(num, seed, size=128):
    """``num`` boxes of 16-128 px inside a ``size`` image: every box is at
    least one feature pixel wide at its FPN level (below one, ONNX's
    RoiAlign of opset 11 widens it to one, mmcv's op does not)."""
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(num, 2, generator=g) * (size - 16) + 16
    xy = torch.rand(num, 2, generator=g) * (size - wh)
    return torch.cat([xy, xy + wh], 1)


def test_traced_extractor_in_the_detector_equals_mmdet_for_other_rois():
    """The demo detector's box RoI extractor, traced on the proposals of
    one image, gives SingleRoIExtractor's features for two images' other
    proposals."""
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.structures.bbox import bbox2roi
    model = _demo_model()
    extractor = model.roi_head.bbox_roi_extractor
    reference = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
        out_channels=128, featmap_strides=[8, 16, 32])
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(
            2, 3, 128, 128, generator=torch.Generator().manual_seed(0)))[:3]
        example = bbox2roi([_proposals(30, seed=1)])
        traced = torch.jit.trace(extractor, (feats, example))
        rois = bbox2roi([_proposals(41, seed=2), _proposals(17, seed=3)])
        # both FPN levels that boxes of a 128 px image reach are used by
        # the example and by the others (SingleRoIExtractor's forward skips
        # an empty level, a branch that the trace records)
        for r in (example, rois):
            assert set(extractor.map_roi_levels(r, 3).tolist()) == {0, 1}
        out = traced(feats, rois)
        assert out.shape == (58, 128, 7, 7)
        torch.testing.assert_close(out, reference(feats, rois), rtol=0,
                                   atol=0)


class _BoxPath(nn.Module):
    """RoIs to box scores and deltas: the box extractor and head."""

    def __init__(self, roi_head):
        super().__init__()
        self.extractor = roi_head.bbox_roi_extractor
        self.head = roi_head.bbox_head

    def forward(self, f0, f1, f2, rois):
        return self.head(self.extractor((f0, f1, f2), rois))


def test_onnx_exported_box_path_gives_the_eager_detections(tmp_path):
    """The box path of the demo detector exported by the TorchScript ONNX
    exporter (as MMDeploy's torch2onnx does) and run by onnxruntime on 75
    proposals (exported with 40) gives the eager model's detections."""
    ort = pytest.importorskip('onnxruntime', reason='the deploy extra '
                              '(onnx, onnxruntime) is part of the test set-up')
    from mmdet.structures.bbox import bbox2roi
    from mmengine.config import ConfigDict
    from mmengine.structures import InstanceData
    model = _demo_model()
    roi_head = model.roi_head
    # scores spread as a trained model's are (the random init's are nearly
    # uniform over the classes), and a threshold that keeps about 40 of
    # them: ties, or scores at the threshold, would make the comparison
    # depend on round-off
    torch.manual_seed(0)
    nn.init.normal_(roi_head.bbox_head.fc_cls.weight, std=0.5)
    test_cfg = ConfigDict(roi_head.test_cfg, score_thr=0.3)
    path = _BoxPath(roi_head).eval()
    metas = [dict(img_shape=(128, 128), ori_shape=(128, 128),
                  scale_factor=(1., 1.))]
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(
            1, 3, 128, 128, generator=torch.Generator().manual_seed(0)))
        example = bbox2roi([_proposals(40, seed=4)])
        proposals = _proposals(75, seed=5)
        rois = bbox2roi([proposals])
        for r in (example, rois):  # see the test above
            assert set(roi_head.bbox_roi_extractor.map_roi_levels(
                r, 3).tolist()) == {0, 1}
        onnx_file = str(tmp_path / 'box_path.onnx')
        kwargs = {}
        if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
            kwargs['dynamo'] = False  # the TorchScript exporter (torch 2.9+)
        # opset 11: mmcv's RoIAlign symbolic writes Squeeze with an axes
        # attribute, which opset 13 made an input
        torch.onnx.export(
            path, (*feats[:3], example), onnx_file, opset_version=11,
            input_names=['f0', 'f1', 'f2', 'rois'],
            output_names=['cls_score', 'bbox_pred'],
            dynamic_axes={name: {0: 'num_rois'}
                          for name in ('rois', 'cls_score', 'bbox_pred')},
            **kwargs)
        session = ort.InferenceSession(onnx_file,
                                       providers=['CPUExecutionProvider'])
        cls_score, bbox_pred = (torch.from_numpy(a) for a in session.run(
            None, dict(f0=feats[0].numpy(), f1=feats[1].numpy(),
                       f2=feats[2].numpy(), rois=rois.numpy())))
        exported = roi_head.bbox_head.predict_by_feat(
            (rois, ), (cls_score, ), (bbox_pred, ), metas,
            rcnn_test_cfg=test_cfg)[0]
        eager_cls_score, eager_bbox_pred = path(*feats[:3], rois)
        eager = roi_head.predict_bbox(feats, metas,
                                      [InstanceData(bboxes=proposals)],
                                      test_cfg)[0]
    torch.testing.assert_close(cls_score, eager_cls_score, rtol=0, atol=1e-5)
    torch.testing.assert_close(bbox_pred, eager_bbox_pred, rtol=0, atol=1e-5)
    # the comparison is decisive: many detections, scores apart
    assert 20 <= len(eager) < test_cfg.max_per_img
    assert (eager.scores[:-1] - eager.scores[1:]).min() > 1e-4
    assert len(exported) == len(eager)
    assert exported.labels.tolist() == eager.labels.tolist()
    torch.testing.assert_close(exported.scores, eager.scores, rtol=0,
                               atol=1e-5)
    torch.testing.assert_close(exported.bboxes, eager.bboxes, rtol=0,
                               atol=1e-3)
