"""The shipped classification and segmentation configs shrunk to the
synthetic sets (tiny images, one epoch / iteration, no checkpoint), for
runners built in the test process."""
import itertools
import os.path as osp

from mmengine.config import Config, ConfigDict

from mmfca.datasets import CLS_CLASSES, SEG_CLASSES

from . import REPO


_runners = itertools.count()


def own_visualizer(cfg):
    """Give the runner of ``cfg`` its own visualizer. MMDetection's and
    MMSegmentation's configs name theirs 'visualizer', a process-wide
    instance: a second runner in the same process would get the first's,
    which writes into the first runner's work dir (gone once that test
    passed; pytest reuses the folder name for the next test)."""
    cfg.visualizer.name = f'visualizer#{next(_runners)}'
    return cfg


def classification_cfg(config, root, work_dir):
    """``config`` (relative to the repository) on the synthetic ImageNet
    set at ``root``: 56 px crops, batch 8, one epoch."""
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
    own_visualizer(cfg)
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    return own_visualizer(cfg)


def segmentation_cfg(config, root, work_dir):
    """``config`` on the synthetic segmentation set at ``root``: 64 px,
    batch 2, one iteration."""
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
    return own_visualizer(cfg)
