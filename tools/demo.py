# Copyright (c) mmfca contributors. All rights reserved.
"""The README's main job (`make demo`), with no download:

1. generate the synthetic COCO-style shapes set (deterministic) under
   data/synthetic_coco/ unless it is there;
2. train Mask R-CNN FcaNet-18 on it on the CPU with tools/train.py
   (mmengine's Runner, progress logged), evaluating COCO bbox and segm mAP
   with pycocotools (MMDetection's CocoMetric) at the end;
3. draw the predictions on a few val images into PNG files.
"""
import argparse
import glob
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import train  # noqa: E402

from mmfca.datasets import make_synthetic_coco  # noqa: E402
from mmfca.utils import TRUSTED_SCHEME  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'mask-rcnn_fca18_fpn_synthetic-coco_cpu.py')


def draw_overlays(config, checkpoint, images, out_dir):
    """Run the trained detector on ``images``; write ``out_dir/*.png``."""
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    from mmengine.runner import load_checkpoint

    model = init_detector(config, checkpoint=None, device='cpu')
    # our own run's checkpoint: trusted (see mmfca.utils.checkpoint)
    meta = load_checkpoint(model, TRUSTED_SCHEME + checkpoint,
                           map_location='cpu')['meta']
    model.dataset_meta = meta['dataset_meta']
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    outs = []
    for path in images:
        img = mmcv.imread(path, channel_order='rgb')
        out_file = osp.join(out_dir,
                            osp.splitext(osp.basename(path))[0] + '.png')
        visualizer.add_datasample(
            'pred', img, data_sample=inference_detector(model, path),
            draw_gt=False, pred_score_thr=0.5, out_file=out_file)
        outs.append(out_file)
    return outs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--work-dir',
        default=osp.join(ROOT, 'work_dirs/demo',
                         time.strftime('run_%Y%m%d_%H%M%S')),
        help='a new folder per run by default, so earlier runs are kept')
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'data/synthetic_coco'))
    parser.add_argument('--num-overlays', type=int, default=4)
    parser.add_argument('--cfg-options', nargs='*', default=[])
    args = parser.parse_args(argv)
    start = time.time()

    ann = osp.join(args.data_root, 'annotations/instances_val2017.json')
    if not osp.isfile(ann):
        print(f'[demo] generating the synthetic COCO set in {args.data_root}')
        make_synthetic_coco(args.data_root, num_train=256, num_val=32,
                            seed=0)
    root = args.data_root.rstrip('/') + '/'
    data_opts = [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]
    print('[demo] training Mask R-CNN FcaNet-18 on the CPU')
    train.main([CONFIG, '--work-dir', args.work_dir, '--cfg-options'] +
               data_opts + list(args.cfg_options))

    ckpt = max(glob.glob(osp.join(args.work_dir, 'epoch_*.pth')),
               key=osp.getmtime)
    images = sorted(glob.glob(osp.join(args.data_root, 'val2017', '*.jpg')))
    out_dir = osp.join(args.work_dir, 'overlays')
    outs = draw_overlays(CONFIG, ckpt, images[:args.num_overlays], out_dir)
    print(f'[demo] checkpoint: {ckpt}')
    print(f'[demo] prediction overlays: {", ".join(outs)}')
    print(f'[demo] finished in {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
