# Copyright (c) mmfca contributors. All rights reserved.
"""Fail early, and readably, when a config's dataset files are missing."""
import os.path as osp

COCO_LAYOUT = """\
{root}
├── annotations
│   ├── instances_train2017.json
│   └── instances_val2017.json
├── train2017/   (the training images)
└── val2017/     (the validation images)"""


def _dataset_cfgs(cfg):
    """Yield the leaf dataset configs of a (possibly wrapped) dataset."""
    if 'datasets' in cfg:
        for sub in cfg['datasets']:
            yield from _dataset_cfgs(sub)
    elif 'dataset' in cfg:
        yield from _dataset_cfgs(cfg['dataset'])
    else:
        yield cfg


def _join(root, path):
    return path if root is None or osp.isabs(path) else osp.join(root, path)


def check_data_paths(cfg, loaders=('train_dataloader', 'val_dataloader',
                                   'test_dataloader')) -> None:
    """Check that the files the config's datasets read exist.

    Args:
        cfg (Config): A full config.
        loaders (Sequence[str]): Dataloader keys to check (missing keys are
            skipped).

    Raises:
        FileNotFoundError: Naming the missing path, the config field it
            comes from and, for COCO datasets, the expected layout.
    """
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for ds in _dataset_cfgs(cfg[loader]['dataset']):
            root = ds.get('data_root')
            paths = []
            if ds.get('ann_file'):
                paths.append(('ann_file', _join(root, ds['ann_file'])))
            prefixes = ds.get('data_prefix') or {}
            if isinstance(prefixes, str):  # MMPretrain's CustomDataset
                prefixes = {'': prefixes}
            for key, prefix in prefixes.items():
                if isinstance(prefix, str) and prefix:
                    field = f'data_prefix.{key}' if key else 'data_prefix'
                    paths.append((field, _join(root, prefix)))
            if root and not paths:
                paths.append(('data_root', root))
            for field, path in paths:
                if osp.exists(path):
                    continue
                msg = (f'{loader}.dataset.{field}: {path} does not exist '
                       f'(data_root={root!r}).')
                if 'Coco' in str(ds.get('type', '')):
                    msg += ('\nExpected the COCO layout:\n' +
                            COCO_LAYOUT.format(root=root or '<data_root>') +
                            '\nDownload COCO 2017 there, or point '
                            'data_root elsewhere, e.g. --cfg-options '
                            'train_dataloader.dataset.data_root=... (and the '
                            'val/test dataloaders); `make demo` generates a '
                            'synthetic set in that layout.')
                raise FileNotFoundError(msg)
