"""MMPretrain classification and MMSegmentation segmentation with FcaNet:
one training iteration plus evaluation through the real Runner on the
synthetic sets, from the shipped configs."""
import os.path as osp

import pytest
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from conftest import REPO, run, tool
from mmfca.datasets import (CLS_CLASSES, SEG_CLASSES, make_synthetic_imagenet,
                            make_synthetic_segmentation)


@pytest.fixture(scope='module')
def imagenet_root(tmp_path_factory):
    return make_synthetic_imagenet(
        str(tmp_path_factory.mktemp('imagenet')), num_train=8, num_val=12)


@pytest.fixture(scope='module')
def seg_root(tmp_path_factory):
    return make_synthetic_segmentation(
        str(tmp_path_factory.mktemp('seg')), num_train=4, num_val=2)


def classification_cfg(config, root, work_dir):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.work_dir = str(work_dir)
    cfg.model.head.num_classes = len(CLS_CLASSES)
    cfg.data_preprocessor.num_classes = len(CLS_CLASSES)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=56),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')
    ]
    val_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=64, edge='short'),
        dict(type='CenterCrop', crop_size=56),
        dict(type='PackInputs')
    ]
    for loader, prefix, pipeline in (('train_dataloader', 'train',
                                      train_pipeline),
                                     ('val_dataloader', 'val', val_pipeline)):
        cfg[loader].dataset = ConfigDict(
            type='CustomDataset', data_root=root, data_prefix=prefix,
            pipeline=pipeline)
        cfg[loader].batch_size = 8
        cfg[loader].num_workers = 0
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.mark.parametrize('config', [
    'configs/fcanet/fcanet18_8xb32_in1k.py',
    'configs/fcanet/fcanet50_8xb32_in1k.py'
])
def test_classification_trains_and_reports_top1_top5(config, imagenet_root,
                                                     tmp_path):
    cfg = classification_cfg(config, imagenet_root, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1  # 8 images, batch 8
    metrics = runner.val_loop.run()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    assert 0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100


def segmentation_cfg(config, root, work_dir):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None  # no ImageNet checkpoint here
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.decode_head.num_classes = len(SEG_CLASSES)
    cfg.model.auxiliary_head.num_classes = len(SEG_CLASSES)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='Resize', scale=(64, 64), keep_ratio=True),
        dict(type='PackSegInputs')
    ]
    for loader, split in (('train_dataloader', 'train'),
                          ('val_dataloader', 'val')):
        cfg[loader].dataset = ConfigDict(
            type='BaseSegDataset', data_root=root,
            metainfo=dict(classes=SEG_CLASSES),
            data_prefix=dict(img_path=f'img_dir/{split}',
                             seg_map_path=f'ann_dir/{split}'),
            img_suffix='.jpg', seg_map_suffix='.png', pipeline=pipeline)
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=1)
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.mark.parametrize('config', [
    'configs/seg/fcn_fca50-d8_4xb4-80k_ade20k-512x512.py',
    'configs/seg/upernet_fca50_4xb2-80k_cityscapes-512x1024.py'
])
def test_segmentation_trains_and_reports_miou(config, seg_root, tmp_path):
    cfg = segmentation_cfg(config, seg_root, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    metrics = runner.val_loop.run()
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(metrics)
    assert 0 <= metrics['mIoU'] <= 100


def test_train_tool_runs_a_classification_config(imagenet_root, tmp_path):
    """tools/train.py picks MMPretrain by the config's default_scope."""
    cfg = classification_cfg('configs/fcanet/fcanet18_8xb32_in1k.py',
                             imagenet_root, tmp_path / 'work')
    path = tmp_path / 'cls.py'
    cfg.dump(str(path))
    proc = run(tool('train.py') + [str(path)])
    assert 'accuracy/top1' in proc.stdout
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    proc = run(tool('test.py') + [str(path), str(ckpt), '--work-dir',
                                  str(tmp_path / 'work')])
    assert 'accuracy/top5' in proc.stdout
