"""FcaNet compiles as one graph (torch.compile's host-bound regime: a
detector at 1-2 images per GPU): FcaNet-50, and Mask R-CNN FcaNet-50's
backbone + neck, are captured by dynamo with no graph break, in training
and in eval mode (``torch._dynamo.explain`` traces without compiling)."""
import pytest
import torch
from mmengine.config import Config

from _helpers import REPO
from mmfca.models import FcaNet

pytestmark = pytest.mark.slow  # dynamo traces ResNet-50 four times


def explain(fn, *args):
    torch._dynamo.reset()
    return torch._dynamo.explain(fn)(*args)


def assert_one_graph(explained):
    reasons = [str(b.reason) for b in explained.break_reasons]
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), \
        reasons


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
def test_fcanet50_is_one_graph(train):
    model = FcaNet(50).train(train)
    assert_one_graph(explain(model, torch.randn(2, 3, 64, 64)))


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
def test_mask_rcnn_fcanet50_backbone_and_neck_are_one_graph(train):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(f'{REPO}/configs/det/mask-rcnn_fca50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None  # no checkpoint to read
    detector = MODELS.build(cfg.model).train(train)
    assert_one_graph(explain(detector.extract_feat,
                             torch.randn(1, 3, 64, 96)))
