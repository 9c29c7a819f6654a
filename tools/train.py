# Copyright (c) mmfca contributors. All rights reserved.
"""Train with mmengine's Runner: MMDetection's tools/train.py interface,
for MMDetection, MMPretrain and MMSegmentation configs (the config's
``default_scope`` picks the library).

    python tools/train.py configs/mask_rcnn_fca50_coco.py
    torchrun --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch
"""
import argparse
import glob
import os
import os.path as osp

from mmengine.config import DictAction

from mmfca.datasets import check_data_paths
from mmfca.utils import build_runner, load_config, resolve_resume


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the LR by the total batch size (auto_scale_lr)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint of the work dir, or, without a '
        'value, from its latest one. Only checkpoints inside the work dir '
        'are trusted (resume unpickles the training state).')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='start a new run in a work dir that holds checkpoints of an '
        'earlier run, replacing them (refused otherwise)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (see MMDetection)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def refuse_to_overwrite(work_dir):
    """Raise if ``work_dir`` holds checkpoints a new run would replace."""
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if found:
        raise FileExistsError(
            f'{work_dir} holds checkpoints of an earlier run '
            f'({", ".join(osp.basename(p) for p in found)}); a new run '
            f'would overwrite them. Pass --resume to continue that run, '
            f'--work-dir to start elsewhere, or --overwrite to replace them.')


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    check_data_paths(cfg)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr = '
                               'dict(base_batch_size=...) in the config.')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:
        load_from = resolve_resume(cfg.work_dir, args.resume)
        cfg.resume = load_from is not None
        cfg.load_from = load_from
    elif not args.overwrite:
        refuse_to_overwrite(cfg.work_dir)

    build_runner(cfg).train()


if __name__ == '__main__':
    main()
