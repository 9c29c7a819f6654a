"""The COCO configs against the release's recipes and MMDetection's R-50
configs; the shared backbone files. (That every config builds, and is in
the model index: test_model_index.py.)"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from _helpers import REPO
from _helpers.configs import diff_keys, load_dict, mmdet_config

# model configs (configs/deploy/ holds MMDeploy's deploy configs, tested
# in tests/deployment/test_deploy.py)
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    if '/_base_/' not in p and '/configs/deploy/' not in p)
DET = osp.join(REPO, 'configs', 'det')


# The release's MMDetection 2.x recipes (docs/recipes.md): what each of
# our configs changes in MMDetection's R-50 one.
RELEASE_RECIPES = {
    'faster-rcnn_fca50_fpn_1x_coco.py': (
        'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', {
            'model.data_preprocessor.pad_size_divisor', 'optim_wrapper.'
            'optimizer.lr', 'train_pipeline', 'test_pipeline',
            'train_dataloader.dataset.pipeline',
            'val_dataloader.dataset.pipeline',
            'test_dataloader.dataset.pipeline'}),
    'mask-rcnn_fca50_fpn_1x_coco.py': (
        'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', {
            'optim_wrapper.optimizer.lr', 'train_dataloader.batch_size',
            'auto_scale_lr.base_batch_size',
            'model.train_cfg.rcnn.sampler.type'}),
}


@pytest.mark.parametrize('ours', sorted(RELEASE_RECIPES))
def test_release_recipes_change_only_the_release_settings(ours):
    theirs_rel, expected = RELEASE_RECIPES[ours]
    ours = load_dict(osp.join(DET, ours))
    theirs = load_dict(mmdet_config(theirs_rel))
    assert ours.pop('custom_imports') == dict(
        imports=['mmfca'], allow_failed_imports=False)
    shared = ours.pop('fcanet50')  # configs/_base_/models/fcanet50.py
    ours_backbone = ours['model'].pop('backbone')
    assert {k: ours_backbone[k] for k in shared} == shared
    theirs['model'].pop('backbone')
    assert diff_keys(ours, theirs) == expected
    assert ours_backbone['type'] == 'FcaNet'
    assert ours_backbone['depth'] == 50
    assert ours_backbone['freq_sel_method'] == 'top16'
    assert ours_backbone['reduction'] == 16
    assert ours_backbone['init_cfg'] == dict(
        type='Pretrained', checkpoint='checkpoints/fcanet50_in1k.pth',
        prefix='backbone.')


def _release(name):
    cfg = Config.fromfile(osp.join(DET, name))
    cfg.model.backbone.init_cfg = None
    return cfg


# (frozen_stages, BN requires_grad, images per GPU, lr, R-CNN sampler,
#  match_low_quality) of the release, per config
RELEASE_VALUES = {
    'faster-rcnn_fca50_fpn_1x_coco.py': (1, True, 2, 0.01, 'RandomSampler',
                                         False),
    'faster-rcnn_fca101_fpn_1x_coco.py': (1, True, 2, 0.01, 'RandomSampler',
                                          False),
    'mask-rcnn_fca50_fpn_1x_coco.py': (0, False, 1, 0.01, 'OHEMSampler', True),
    'mask-rcnn_fca101_fpn_1x_coco.py': (0, False, 1, 0.01, 'OHEMSampler',
                                        True),
    'mask-rcnn_fca50_fpn_amp-1x_coco.py': (0, False, 1, 0.01, 'OHEMSampler',
                                           True),
}


@pytest.mark.parametrize('name', sorted(RELEASE_VALUES))
def test_release_recipe_values(name):
    frozen, bn_grad, per_gpu, lr, sampler, low_quality = RELEASE_VALUES[name]
    cfg = _release(name)
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == 8 * per_gpu
    assert cfg.optim_wrapper.optimizer.lr == lr
    rcnn = cfg.model.train_cfg.rcnn
    assert (rcnn.sampler.type, rcnn.sampler.num, rcnn.sampler.pos_fraction,
            rcnn.assigner.match_low_quality) == (sampler, 512, 0.25,
                                                 low_quality)
    milestones = [s for s in cfg.param_scheduler
                  if s.type == 'MultiStepLR'][0].milestones
    warmup = [s for s in cfg.param_scheduler if s.type == 'LinearLR'][0]
    assert (cfg.train_cfg.max_epochs, milestones, warmup.end,
            warmup.start_factor) == (12, [8, 11], 500, 0.001)
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.model.backbone.frozen_stages == frozen
    assert cfg.model.backbone.norm_cfg == dict(type='BN',
                                               requires_grad=bn_grad)


@pytest.mark.parametrize('name', sorted(RELEASE_VALUES))
def test_release_recipe_freezes_what_the_release_froze(name):
    """After train(): the stem is always frozen (weights and BN), stage 1
    too when frozen_stages=1; BN affine parameters learn only with
    requires_grad=True; every BN keeps its running statistics (norm_eval)."""
    from mmdet.registry import MODELS
    frozen, bn_grad = RELEASE_VALUES[name][:2]
    cfg = _release(name)
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    backbone.train()
    import torch.nn as nn
    for pname, param in backbone.named_parameters():
        stage = 0 if not pname.startswith('layer') else int(pname[5])
        is_bn = '.bn' in pname or pname.startswith('bn') or \
            'downsample.1' in pname
        if stage <= frozen:
            expect = False
        else:
            expect = bn_grad if is_bn else True
        assert param.requires_grad is expect, pname
    bns = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert backbone.layer4.training  # only norms are put in eval mode


def test_retinanet_and_cascade_keep_mmdetections_resnet_settings():
    """No release config exists for these: everything but the backbone
    type and its checkpoint is MMDetection's."""
    for ours, theirs in (
            ('retinanet_fca50_fpn_1x_coco.py',
             'retinanet/retinanet_r50_fpn_1x_coco.py'),
            ('cascade-mask-rcnn_fca50_fpn_1x_coco.py',
             'cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py')):
        ours = load_dict(osp.join(DET, ours))
        theirs = load_dict(mmdet_config(theirs))
        ours.pop('custom_imports')
        assert ours.pop('fcanet50') == {
            k: ours['model']['backbone'][k]
            for k in ('type', 'depth', 'init_cfg')}
        assert diff_keys(ours, theirs) == {
            'model.backbone.type', 'model.backbone.init_cfg.checkpoint',
            'model.backbone.init_cfg.prefix'}


def test_amp_config_is_the_mask_recipe_with_amp():
    amp = load_dict(osp.join(DET, 'mask-rcnn_fca50_fpn_amp-1x_coco.py'))
    base = load_dict(osp.join(DET, 'mask-rcnn_fca50_fpn_1x_coco.py'))
    assert diff_keys(amp, base) == {'optim_wrapper.type'}
    assert amp['optim_wrapper']['type'] == 'AmpOptimWrapper'


def test_missing_pretrained_checkpoint_says_how_to_make_it():
    from mmfca.models import FcaNet
    model = FcaNet(50, init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/nope.pth',
        prefix='backbone.'))
    with pytest.raises(FileNotFoundError,
                       match=r'(?s)checkpoints/nope\.pth not found.*'
                       r'fcanet2mmfca\.py fca50\.pth'):
        model.init_weights()


# the backbone files under configs/_base_/models/ and what they hold
BACKBONES = {
    'fcanet50': dict(type='FcaNet', depth=50, init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/fcanet50_in1k.pth',
        prefix='backbone.')),
    'fcanet101': dict(type='FcaNet', depth=101, init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/fcanet101_in1k.pth',
        prefix='backbone.')),
}


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_pretrained_fcanet_backbones_come_from_one_file_each(path):
    """Every config that starts an FcaNet backbone from converted ImageNet
    weights takes it from configs/_base_/models/fcanet{50,101}.py: its
    backbone holds that dict, and no config spells the dict out."""
    cfg = load_dict(path)
    backbone = cfg['model'].get('backbone', {})
    init = backbone.get('init_cfg') or {}
    if backbone.get('type') != 'FcaNet' or init.get('type') != 'Pretrained':
        return  # e.g. the demo: FcaNet-18 from scratch
    name = f'fcanet{backbone["depth"]}'
    assert cfg[name] == BACKBONES[name]
    assert {k: backbone[k] for k in BACKBONES[name]} == BACKBONES[name]
    with open(path) as f:
        assert 'checkpoints/fcanet' not in f.read()
