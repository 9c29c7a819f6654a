"""Every config loads and builds; the entry config differs from
MMDetection's R-50 one only in the backbone and custom_imports."""
import glob
import importlib
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from conftest import REPO

CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '/_base_/' not in p)


def test_the_documented_configs_exist():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in CONFIGS}
    assert {
        'mask_rcnn_fca50_coco.py', 'mask-rcnn_fca101_fpn_1x_coco.py',
        'mask-rcnn_fca50_fpn_amp-1x_coco.py', 'faster-rcnn_fca50_fpn_1x_coco.py',
        'faster-rcnn_fca101_fpn_1x_coco.py', 'retinanet_fca50_fpn_1x_coco.py',
        'cascade-mask-rcnn_fca50_fpn_1x_coco.py'
    } <= names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    registry = {
        'mmdet': 'mmdet.registry', 'mmpretrain': 'mmpretrain.registry',
        'mmseg': 'mmseg.registry'}[scope]
    models = importlib.import_module(registry).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    # the apples-to-apples baselines of configs/fcanet/ keep their backbone
    expected = {'resnet50': 'ResNet', 'seresnet50': 'SEResNet'}.get(
        osp.basename(path).split('_')[0], 'FcaNet')
    assert type(model.backbone).__name__ == expected
    assert model.backbone.depth == cfg.model.backbone.depth
    if expected == 'FcaNet':
        assert cfg.custom_imports['imports'] == ['mmfca']


def _unscoped(obj):
    """Drop the ``_scope_='mmdet'`` tags that ``mmdet::`` inheritance adds
    to every typed dict (default_scope is mmdet either way)."""
    if isinstance(obj, dict):
        return {k: _unscoped(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unscoped(v) for v in obj)
    return obj


def _load(path):
    return _unscoped(Config.fromfile(path).to_dict())


def _mmdet_config(rel):
    import mmdet
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', rel)


def test_entry_config_equals_mmdet_r50_outside_backbone():
    ours = _load(osp.join(REPO, 'configs/mask_rcnn_fca50_coco.py'))
    theirs = _load(_mmdet_config('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'))
    assert ours.pop('custom_imports') == dict(
        imports=['mmfca'], allow_failed_imports=False)
    ours_backbone = ours['model'].pop('backbone')
    theirs_backbone = theirs['model'].pop('backbone')
    assert ours == theirs
    # the backbone keeps the ResNet-50 baseline's settings, BN frozen
    assert ours_backbone['type'] == 'FcaNet'
    for key in ('depth', 'num_stages', 'out_indices', 'frozen_stages',
                'norm_eval', 'style'):
        assert ours_backbone[key] == theirs_backbone[key], key
    assert ours_backbone['norm_cfg'] == dict(type='BN', requires_grad=False)
    assert ours_backbone['init_cfg']['prefix'] == 'backbone.'


@pytest.mark.parametrize('ours,theirs', [
    ('faster-rcnn_fca50_fpn_1x_coco.py',
     'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    ('retinanet_fca50_fpn_1x_coco.py', 'retinanet/retinanet_r50_fpn_1x_coco.py'),
    ('cascade-mask-rcnn_fca50_fpn_1x_coco.py',
     'cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'),
    ('mask-rcnn_fca50_fpn_amp-1x_coco.py',
     'mask_rcnn/mask-rcnn_r50_fpn_amp-1x_coco.py'),
])
def test_other_configs_change_only_the_backbone(ours, theirs):
    ours = _load(osp.join(REPO, 'configs', ours))
    theirs = _load(_mmdet_config(theirs))
    ours.pop('custom_imports')
    assert ours['model'].pop('backbone')['type'] == 'FcaNet'
    theirs['model'].pop('backbone')
    assert ours == theirs


def test_missing_pretrained_checkpoint_says_how_to_make_it():
    from mmfca.models import FcaNet
    model = FcaNet(50, init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/nope.pth',
        prefix='backbone.'))
    with pytest.raises(FileNotFoundError,
                       match=r'(?s)checkpoints/nope\.pth not found.*'
                       r'fcanet2mmfca\.py fca50\.pth'):
        model.init_weights()
