"""The squeeze-switch configs: each is its library's config plus the one
switch, builds, and trains one iteration through the real Runner; the FCA
plugin in MMDetection's ResNeXt sits where FcaNet's does."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from _helpers import REPO
from _helpers.configs import diff_keys, load_dict, mmdet_config
from _helpers.runner_configs import classification_cfg, own_visualizer
from mmfca.datasets import SYNTHETIC_COCO_CLASSES

SWITCH = osp.join(REPO, 'configs', 'squeeze_switch')

DETECTION = {
    'faster-rcnn_x101-32x4d-fca_fpn_1x_coco.py':
    ('faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
     'MultiSpectralAttention'),
    'faster-rcnn_r50-eca-fca_fpn_1x_coco.py':
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'ECALayer'),
    'faster-rcnn_r50-cbam-fca_fpn_1x_coco.py':
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'CBAMChannelAttention'),
}


def test_seresnet_config_is_mmpretrains_plus_one_line():
    import mmpretrain
    ours = load_dict(osp.join(SWITCH, 'fca-seresnet50_8xb32_in1k.py'))
    theirs = load_dict(
        osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                 'seresnet', 'seresnet50_8xb32_in1k.py'))
    assert ours.pop('custom_imports')['imports'] == ['mmfca']
    assert diff_keys(ours, theirs) == {'model.backbone.type'}
    assert ours['model']['backbone']['type'] == 'MultiSpectralSEResNet'


def test_seresnet_config_trains_one_iteration(imagenet_root, tmp_path):
    cfg = classification_cfg(
        'configs/squeeze_switch/fca-seresnet50_8xb32_in1k.py', imagenet_root,
        tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    backbone = runner.model.backbone
    assert type(backbone).__name__ == 'MultiSpectralSEResNet'
    assert type(backbone.layer1[0].se_layer.global_avgpool).__name__ == \
        'MultiSpectralSqueeze'


@pytest.mark.parametrize('name', sorted(DETECTION))
def test_detection_config_is_mmdets_plus_the_plugins(name):
    theirs, plugin = DETECTION[name]
    ours = load_dict(osp.join(SWITCH, name))
    theirs = load_dict(mmdet_config(theirs))
    ours.pop('custom_imports')
    assert diff_keys(ours, theirs) == {'model.backbone.plugins'}
    assert {p['cfg']['type'] for p in ours['model']['backbone']['plugins']} \
        == {plugin}


def detection_cfg(name, root, work_dir):
    """The config on the synthetic COCO set: 96 px, 2 images, 1 iteration,
    no pretrained download."""
    cfg = Config.fromfile(osp.join(SWITCH, name))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.num_classes = len(SYNTHETIC_COCO_CLASSES)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(96, 96), keep_ratio=True),
        dict(type='PackDetInputs')
    ]
    cfg.train_dataloader.update(batch_size=2, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.update(
        data_root=root, metainfo=dict(classes=SYNTHETIC_COCO_CLASSES),
        indices=2, pipeline=pipeline)
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 100
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.logger = ConfigDict(type='LoggerHook', interval=1)
    return own_visualizer(cfg)


@pytest.mark.parametrize('name', sorted(DETECTION))
def test_detection_config_trains_one_iteration(name, synthetic_coco,
                                               tmp_path):
    cfg = detection_cfg(name, synthetic_coco, tmp_path)
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    assert runner.iter == 1
    plugin = DETECTION[name][1]
    backbone = runner.model.backbone
    atts = [m for m in backbone.modules() if type(m).__name__ == plugin]
    assert len(atts) == sum(backbone.stage_blocks)  # one per bottleneck
    changed = [k for k, v in runner.model.state_dict().items()
               if k.startswith('backbone.layer4') and
               not torch.equal(v, before[k])]
    assert changed  # the backbone with its attention layers learned


def test_resnext_fca_plugin_sits_where_fcanets_does():
    """Each ResNeXt bottleneck applies the FCA after norm3, before the
    identity add, with FcaNet's filter size for its stage."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(
        osp.join(SWITCH, 'faster-rcnn_x101-32x4d-fca_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.depth = 50
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(cfg.model.backbone)
    for stage, size in enumerate((56, 28, 14, 7)):
        block = getattr(backbone, f'layer{stage + 1}')[0]
        assert block.after_conv3_plugin_names == ['att']
        assert block.att.dct_layer.dct_h == size
    block = backbone.layer2[1].eval()
    x = torch.randn(1, 512, 9, 9)
    with torch.no_grad():
        out = block.relu(block.norm1(block.conv1(x)))
        out = block.relu(block.norm2(block.conv2(out)))
        out = block.att(block.norm3(block.conv3(out)))
        torch.testing.assert_close(block(x), block.relu(out + x))
