# Copyright (c) mmfca contributors. All rights reserved.
"""The README's main job (`make demo`), with no download:

1. generate the synthetic COCO-style shapes set (deterministic) under
   data/synthetic_coco_demo/ unless it is there (see DEMO_DATA);
2. train Mask R-CNN FcaNet-18 on it on the CPU from scratch with
   tools/train.py (mmengine's Runner), evaluating COCO bbox and segm mAP
   with pycocotools (MMDetection's CocoMetric) at the end;
3. draw a few val images four times their size into PNG files, the ground
   truth beside the predictions, each label above its box;
4. print a summary: the mAPs, where the checkpoint, the overlays and the
   full log are, the time, and the commands that evaluate, export, deploy
   and look inside the checkpoint (they need no extra flag).

The console shows training progress and the evaluation; the deprecation
warnings of the libraries underneath (nothing a user can act on) are left
out of it, and the full log stays in the work dir.
"""
import argparse
import contextlib
import glob
import io
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np

from mmfca.datasets import make_synthetic_coco

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
#: Where the demo writes it: the demo config's data_root, relative to the
#: folder the tools run from (the repository root).
DEMO_ROOT = 'data/synthetic_coco_demo'


#: Overlays are drawn this many times the images' size (160 -> 640 px).
OVERLAY_SCALE = 4
#: Font size (px) of the labels above the boxes, and the room left above
#: the image for the labels of shapes at its top edge.
LABEL_SIZE, LABEL_ROOM = 12, 20
#: Height (px) of the titles' band.
TITLE_ROOM = 30


def overlay_visualizer():
    """MMDetection's DetLocalVisualizer, but each label sits above its box
    in a small font (MMDetection's sits inside the box's top-left corner,
    where it covers the shape)."""
    from mmdet.visualization import DetLocalVisualizer

    class OverlayVisualizer(DetLocalVisualizer):

        def draw_texts(self, texts, positions, *args, **kwargs):
            # DetLocalVisualizer._draw_instances places each label at its
            # box's top-left corner + line_width: move it above the corner
            corner = np.asarray(positions, dtype=float) - self.line_width
            kwargs.update(font_sizes=LABEL_SIZE, vertical_alignments='bottom')
            return super().draw_texts(texts, corner - [0, 3], *args,
                                      **kwargs)

        def add_titles(self, titles, width):
            """Add a band above the drawn image, a title per panel."""
            self.set_image(np.pad(self.get_image(),
                                  ((TITLE_ROOM, 0), (0, 0), (0, 0)),
                                  constant_values=255))
            super().draw_texts(
                titles, np.array([[8 + i * width, 6]
                                  for i in range(len(titles))]),
                colors='black', font_sizes=16)

    return OverlayVisualizer.get_instance(
        'mmfca-demo-overlays', line_width=2, alpha=0.6)


def enlarge(instances, scale, top):
    """``instances`` drawn ``scale`` times larger, ``top`` px lower."""
    import torch.nn.functional as F
    out = instances.clone()
    out.bboxes = instances.bboxes * scale + \
        instances.bboxes.new_tensor([0, top, 0, top])
    n, h, w = instances.masks.shape
    masks = instances.masks.new_zeros((n, h * scale, w * scale))
    if n:
        masks = F.interpolate(instances.masks[None].float(),
                              scale_factor=scale, mode='bilinear',
                              align_corners=False)[0] > 0.5
    out.masks = F.pad(masks, (0, 0, top, 0))
    return out


def ground_truth(coco, path, classes):
    """The val annotations of image ``path`` (crowd regions left out)."""
    import torch
    from mmengine.structures import InstanceData
    image = next(i for i in coco.dataset['images']
                 if i['file_name'] == osp.basename(path))
    names = {c['id']: c['name'] for c in coco.dataset['categories']}
    anns = [a for a in coco.imgToAnns[image['id']] if not a['iscrowd']]
    gt = InstanceData()
    gt.bboxes = torch.tensor([[x, y, x + w, y + h]
                              for x, y, w, h in (a['bbox'] for a in anns)],
                             dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor([classes.index(names[a['category_id']])
                              for a in anns], dtype=torch.long)
    gt.masks = torch.from_numpy(
        np.stack([coco.annToMask(a) for a in anns]) if anns else
        np.zeros((0, image['height'], image['width']))).bool()
    return gt


def draw_overlays(config, checkpoint, images, ann_file, out_dir):
    """Run the trained detector on ``images``; write ``out_dir/*.png``:
    the ground truth (left) and the predictions with score >= SCORE_THR
    (right), each OVERLAY_SCALE times the image's size."""
    import mmcv
    from mmdet.apis import inference_detector
    from mmdet.structures import DetDataSample
    from mmengine.registry import init_default_scope
    from pycocotools.coco import COCO

    from mmfca.apis import init_model
    model = init_model(config, checkpoint)
    init_default_scope('mmdet')  # inference_detector's pipeline
    classes = list(model.dataset_meta['classes'])
    visualizer = overlay_visualizer()
    visualizer.dataset_meta = model.dataset_meta
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' chatter
        coco = COCO(ann_file)
    outs = []
    for path in images:
        img = mmcv.imread(path, channel_order='rgb')
        pred = inference_detector(model, path).pred_instances
        pred = pred[pred.scores >= SCORE_THR]
        sample = DetDataSample(
            gt_instances=enlarge(ground_truth(coco, path, classes),
                                 OVERLAY_SCALE, LABEL_ROOM),
            pred_instances=enlarge(pred, OVERLAY_SCALE, LABEL_ROOM))
        big = mmcv.imrescale(img, OVERLAY_SCALE, interpolation='bicubic')
        big = np.pad(big, ((LABEL_ROOM, 0), (0, 0), (0, 0)),
                     constant_values=255)
        visualizer.add_datasample('overlay', big, data_sample=sample,
                                  draw_gt=True, draw_pred=True,
                                  pred_score_thr=SCORE_THR)
        visualizer.add_titles(
            [f'ground truth ({len(sample.gt_instances)} shapes)',
             f'prediction, score >= {SCORE_THR} ({len(pred)})'],
            big.shape[1])
        out_file = osp.join(out_dir,
                            osp.splitext(osp.basename(path))[0] + '.png')
        mmcv.imwrite(visualizer.get_image()[..., ::-1], out_file)
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


def shown(path):
    """``path`` relative to the current folder if it lies inside it."""
    rel = osp.relpath(osp.abspath(path))
    return path if rel.startswith('..') else rel


def next_commands(ckpt, data_root, image, work_dir):
    """The commands that use the demo's checkpoint, as ``(what, argv)``:
    evaluate (tools/test.py), export backbone + FPN and deploy the whole
    detector (deploy.py) and visualise (visualize_attention.py).
    None needs a trust flag: the checkpoint's training state loads through
    mmfca's safe loader."""
    def tool(name):
        return shown(osp.join(ROOT, 'tools', name))

    python, config = shown(sys.executable), shown(CONFIG)
    data = []
    if osp.realpath(data_root) != osp.realpath(DEMO_ROOT):
        root = data_root.rstrip('/') + '/'
        data = ['--cfg-options', f'test_dataloader.dataset.data_root={root}',
                'test_evaluator.ann_file='
                f'{root}annotations/instances_val2017.json']
    ckpt, work_dir = shown(ckpt), shown(work_dir)
    return [
        ('evaluate it (COCO bbox and segm mAP, as above)',
         [python, tool('test.py'), config, ckpt] + data),
        ('export backbone + FPN to ONNX, checked against PyTorch',
         [python, tool('deployment/deploy.py'), config, ckpt, '--part',
          'features', '--img', shown(image), '--work-dir',
          osp.join(work_dir, 'features')]),
        ('deploy the whole detector to ONNX Runtime (MMDeploy); its mAP '
         'beside PyTorch\'s',
         [python, tool('deployment/deploy.py'), config, ckpt, '--work-dir',
          osp.join(work_dir, 'deploy'), '--eval'] + data),
        ('plot what the FCA layers attend to in a val image',
         [python, tool('analysis_tools/visualize_attention.py'), config,
          ckpt, shown(image), '--out', osp.join(work_dir, 'attention.png')]),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--work-dir',
        default=osp.join(ROOT, 'work_dirs/demo',
                         time.strftime('run_%Y%m%d_%H%M%S')),
        help='a new folder per run by default, so earlier runs are kept')
    parser.add_argument('--data-root', default=osp.join(ROOT, DEMO_ROOT))
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
        outs = draw_overlays(CONFIG, ckpt, images[:args.num_overlays], ann,
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
    print('\n[demo] next, from this folder:')
    for what, argv in next_commands(ckpt, args.data_root, images[0],
                                    args.work_dir):
        print(f'  # {what}\n  {" ".join(map(shlex.quote, argv))}')
    return metrics


if __name__ == '__main__':
    main()
