# Copyright (c) mmfca contributors. All rights reserved.
"""The README's main job (`make demo`), with no download:

1. generate the synthetic COCO-style shapes set (deterministic) under
   data/synthetic_coco_demo/ unless it is there (see DEMO_DATA);
2. train Mask R-CNN FcaNet-18 on it on the CPU from scratch with
   tools/train.py (mmengine's Runner), evaluating COCO bbox and segm mAP
   with pycocotools (MMDetection's CocoMetric) at the end;
3. draw the predictions on a few val images into PNG files;
4. print a summary: the mAPs, where the checkpoint, the overlays and the
   full log are, and the time.

The console shows training progress and the evaluation; the deprecation
warnings of the libraries underneath (nothing a user can act on) are left
out of it, and the full log stays in the work dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
import warnings

from mmfca.datasets import make_synthetic_coco
from mmfca.utils import TRUSTED_SCHEME

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'mask-rcnn_fca18_fpn_synthetic-coco_cpu.py')


#: Score threshold of the drawn predictions.
SCORE_THR = 0.5

#: The demo's data set (:func:`mmfca.datasets.make_synthetic_coco`). Shapes
#: that show less than 30 % of themselves (often a few scattered pixels of a
#: shape under another of the same colour) are crowd annotations: COCO's
#: ignore regions, neither a miss nor a false positive in the evaluation
#: (as CityPersons ignores its heavily occluded pedestrians). They were 10
#: of the 90 val instances and capped AP50 near 0.83, as recall at IoU 0.5
#: was 0.96 on the shapes at least half visible but 0.1 on these.
DEMO_DATA = dict(num_train=256, num_val=32, seed=0,
                 ignore_visible_below=0.3)


def draw_overlays(config, checkpoint, images, out_dir):
    """Run the trained detector on ``images``; write ``out_dir/*.png``."""
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    # our own run's checkpoint: trusted (see mmfca.utils.checkpoint); it
    # carries the class names
    model = init_detector(config, checkpoint=TRUSTED_SCHEME + checkpoint,
                          device='cpu')
    # drawn to files only: no visualisation backend (it wants a save_dir)
    visualizer = VISUALIZERS.build(
        dict(model.cfg.visualizer, vis_backends=None,
             name='mmfca-demo-overlays'))
    visualizer.dataset_meta = model.dataset_meta
    outs = []
    for path in images:
        img = mmcv.imread(path, channel_order='rgb')
        out_file = osp.join(out_dir,
                            osp.splitext(osp.basename(path))[0] + '.png')
        visualizer.add_datasample(
            'pred', img, data_sample=inference_detector(model, path),
            draw_gt=False, pred_score_thr=SCORE_THR, out_file=out_file)
        outs.append(out_file)
    return outs


def count_val_instances(data_root):
    """Count the val set's instances; say so if ``data_root`` is not a set
    written with :data:`DEMO_DATA`'s crowd rule.

    Returns:
        tuple: ``(instances evaluated, crowd instances ignored)``.
    """
    with open(osp.join(data_root, 'annotations/instances_val2017.json')) as f:
        val = json.load(f)
    rule = val.get('info', {}).get('mmfca', {}).get('ignore_visible_below')
    if rule != DEMO_DATA['ignore_visible_below']:
        print(f'[demo] note: {data_root} was not written with the demo\'s '
              f'settings ({DEMO_DATA}); its numbers are not comparable '
              f'with the README\'s')
    num_crowd = sum(a['iscrowd'] for a in val['annotations'])
    return len(val['annotations']) - num_crowd, num_crowd


#: Console lines worth showing from tools/train.py (the rest is in the log).
SHOWN = re.compile(r'Epoch\((train|val)\)|Checkpoints will be saved|'
                   r'Error|Traceback|^\s+File |^\S+Error')
METRIC = re.compile(r'coco/(\w+): (-?[\d.]+)')


def train_quietly(args):
    """Run tools/train.py; echo progress lines; return the last
    evaluation's ``coco/*`` metrics (``{name: value}``)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONWARNINGS='ignore')
    proc = subprocess.Popen(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py')] + args,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines, metrics = [], {}
    for line in proc.stdout:
        lines.append(line)
        if SHOWN.search(line):
            # drop the date and the logger name: "Epoch(train) [1][20/64] ..."
            print(re.sub(r'^\d+/\d+ [\d:]+ - mmengine - INFO - ', '  ',
                         line.rstrip()), flush=True)
        if 'Epoch(val)' in line:
            metrics = {k: float(v) for k, v in METRIC.findall(line)}
    if proc.wait() != 0:
        sys.stdout.writelines(lines[-80:])
        raise SystemExit(f'[demo] training failed (exit {proc.returncode}); '
                         f'the output above ends with the error.')
    return metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--work-dir',
        default=osp.join(ROOT, 'work_dirs/demo',
                         time.strftime('run_%Y%m%d_%H%M%S')),
        help='a new folder per run by default, so earlier runs are kept')
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'data/synthetic_coco_demo'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-overlays', type=int, default=4)
    parser.add_argument('--cfg-options', nargs='*', default=[])
    args = parser.parse_args(argv)
    start = time.time()

    ann = osp.join(args.data_root, 'annotations/instances_val2017.json')
    if not osp.isfile(ann):
        print(f'[demo] generating the synthetic COCO set in {args.data_root}')
        make_synthetic_coco(args.data_root, **DEMO_DATA)
    num_instances, num_crowd = count_val_instances(args.data_root)
    root = args.data_root.rstrip('/') + '/'
    data_opts = [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
        f'randomness.seed={args.seed}'
    ]
    print(f'[demo] training Mask R-CNN FcaNet-18 from scratch on the CPU '
          f'(seed {args.seed}); full log in {args.work_dir}')
    metrics = train_quietly([CONFIG, '--work-dir', args.work_dir,
                             '--cfg-options'] + data_opts +
                            list(args.cfg_options))
    trained = time.time() - start

    ckpt = max(glob.glob(osp.join(args.work_dir, 'epoch_*.pth')),
               key=osp.getmtime)
    images = sorted(glob.glob(osp.join(args.data_root, 'val2017', '*.jpg')))
    out_dir = osp.join(args.work_dir, 'overlays')
    with warnings.catch_warnings():  # the libraries' deprecation notes
        warnings.simplefilter('ignore')
        outs = draw_overlays(CONFIG, ckpt, images[:args.num_overlays],
                             out_dir)
    logs = sorted(glob.glob(osp.join(args.work_dir, '*', '*.log')))
    print('\n[demo] summary')
    print(f'  bbox mAP {metrics.get("bbox_mAP", float("nan")):.3f} (AP50 '
          f'{metrics.get("bbox_mAP_50", float("nan")):.3f}, AP75 '
          f'{metrics.get("bbox_mAP_75", float("nan")):.3f}); segm mAP '
          f'{metrics.get("segm_mAP", float("nan")):.3f} (AP50 '
          f'{metrics.get("segm_mAP_50", float("nan")):.3f}) on '
          f'{len(images)} synthetic val images')
    if num_crowd:
        print(f'  ({num_instances} val instances; {num_crowd} more, less '
              f'than {DEMO_DATA["ignore_visible_below"]:.0%} visible, are '
              f'ignored as crowd)')
    print(f'  checkpoint: {ckpt}')
    print(f'  overlays:   {out_dir}/ ({len(outs)} images, score >= '
          f'{SCORE_THR})')
    if logs:
        print(f'  full log:   {logs[-1]}')
    print(f'  time: {trained:.0f} s to train and evaluate, '
          f'{time.time() - start:.0f} s in all')
    return metrics


if __name__ == '__main__':
    main()
