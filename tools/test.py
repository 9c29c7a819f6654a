# Copyright (c) mmfca contributors. All rights reserved.
"""Evaluate a checkpoint with mmengine's Runner: MMDetection's
tools/test.py interface (COCO bbox/segm mAP through CocoMetric), also for
MMPretrain and MMSegmentation configs.

    python tools/test.py configs/mask_rcnn_fca50_coco.py CHECKPOINT

CHECKPOINT may be any run's epoch_N.pth (``make demo``'s included) or
converted weights; it loads without running code from the file.
"""
import argparse
import os
import os.path as osp
import warnings
from copy import deepcopy

from mmengine.config import ConfigDict, DictAction

from mmfca.datasets import check_data_paths
from mmfca.utils import build_runner, load_config, trusted_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the metrics')
    parser.add_argument(
        '--out', help='dump predictions to a pickle file (.pkl)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='save images with predictions drawn into this directory '
        '(relative to the work dir\'s timestamped folder)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time aug')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg, args):
    """Make the library's visualization hook draw test predictions."""
    hooks = cfg.default_hooks
    hook = hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need a `visualization` hook in '
                           'default_hooks.')
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        key = 'test_out_dir' if 'Det' in hook['type'] else 'out_dir'
        hook[key] = args.show_dir


def enable_tta(cfg):
    """MMDetection's default flip TTA when the config defines none."""
    if 'tta_model' not in cfg:
        warnings.warn('No tta_model in the config; using flip TTA.')
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                         max_per_img=100))
    if 'tta_pipeline' not in cfg:
        data = cfg.test_dataloader.dataset
        while 'dataset' in data:
            data = data['dataset']
        cfg.tta_pipeline = deepcopy(data.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.),
                         dict(type='RandomFlip', prob=0.)],
                        [dict(type='PackDetInputs',
                              meta_keys=('img_id', 'img_path', 'ori_shape',
                                         'img_shape', 'scale_factor', 'flip',
                                         'flip_direction'))]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    check_data_paths(cfg, loaders=('test_dataloader', ))
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise FileNotFoundError(f'Checkpoint {args.checkpoint} not found.')
    # a checkpoint of the config's work_dir is trusted, others weights-only
    cfg.load_from = trusted_checkpoint(args.checkpoint, cfg.work_dir)
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        enable_tta(cfg)

    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out}: must be a .pkl file.')
        if cfg.get('default_scope') == 'mmdet':  # encodes masks as RLE
            from mmdet.evaluation import DumpDetResults as DumpResults
        else:
            from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    main()
