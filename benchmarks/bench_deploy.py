# Copyright (c) mmfca contributors. All rights reserved.
"""Mask R-CNN FcaNet-50 at 800x1216 on the CPU: PyTorch (MMDetection's
inference_detector) against ONNX Runtime (the graph tools/deployment/
deploy.py writes, run by MMDeploy's backend model), per image, pre- and
post-processing included, in one run (medians of interleaved repeats).

The weights are the config's initialisation (seeded), with the R-CNN's
score threshold at 0 (``--score-thr``) so that both run the mask head on
a full image's 100 detections, as a trained detector on a busy image does
(with random weights no box scores above the config's 0.05).
Run: python benchmarks/bench_deploy.py [--repeats N] [--threads N]
"""
import argparse
import os.path as osp
import sys
import tempfile

import numpy as np
import torch
from mmengine.config import Config

from timing import header, interleaved_medians, table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'mask_rcnn_fca50_coco.py')
DEPLOY_CFG = osp.join(ROOT, 'configs', 'deploy',
                      'instance-seg_onnxruntime_dynamic.py')


def image(height=800, width=1216, seed=0):
    """A deterministic test image: smooth colour fields and rectangles (the
    config's resize keeps 800x1216 as it is)."""
    rng = np.random.RandomState(seed)
    img = np.zeros((height, width, 3), np.float32)
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    for c in range(3):
        img[..., c] = 128 + 60 * np.sin(6 * xx * (c + 1) + 4 * yy)
    for _ in range(12):
        y, x = rng.randint(0, height - 100), rng.randint(0, width - 100)
        h, w = rng.randint(40, 300, size=2)
        img[y:y + h, x:x + w] = rng.randint(0, 255, size=3)
    return img.clip(0, 255).astype(np.uint8)


def main():
    from mmfca.deployment import mmdeploy_ort
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s)')
    parser.add_argument('--score-thr', type=float, default=0.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mmdeploy_ort.require_mmdeploy()
    cfg = Config.fromfile(CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = args.score_thr
    deploy_cfg = Config.fromfile(DEPLOY_CFG)
    torch.manual_seed(0)
    model = mmdeploy_ort.load_model(cfg.copy(), 'none')
    img = image()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = osp.join(tmp, 'weights.pth')
        torch.save({'state_dict': model.state_dict()}, ckpt)
        print('exporting with MMDeploy (a minute or two)...', flush=True)
        exported = mmdeploy_ort.export(cfg, deploy_cfg, ckpt, img, tmp)
        task, backend = mmdeploy_ort.build_backend(cfg, deploy_cfg,
                                                   exported['onnx'])
        runs = {
            'pytorch': lambda: mmdeploy_ort.predict_pytorch(model, img),
            'onnxruntime': lambda: mmdeploy_ort.predict_backend(
                task, backend, img),
        }
        found = {k: len(fn().pred_instances) for k, fn in runs.items()}
        times = interleaved_medians(runs, args.repeats, warmup=1)
    import onnxruntime
    print()
    print(header('Mask R-CNN FcaNet-50, PyTorch vs ONNX Runtime (CPU)'))
    print(f'`python benchmarks/bench_deploy.py --repeats {args.repeats}`; '
          f'onnxruntime {onnxruntime.__version__}, opset '
          f'{deploy_cfg.onnx_config.opset_version}, R-CNN score_thr '
          f'{args.score_thr}\n')
    print(table(['input', 'detections (PyTorch / ORT)', 'PyTorch s',
                 'ONNX Runtime s', 'PyTorch / ORT'], [[
                     '800x1216', f'{found["pytorch"]} / '
                     f'{found["onnxruntime"]}',
                     f'{times["pytorch"]:.2f}', f'{times["onnxruntime"]:.2f}',
                     f'{times["pytorch"] / times["onnxruntime"]:.2f}'
                 ]]))
    print(f'\nper image, pre- and post-processing included; median of '
          f'{args.repeats} interleaved repeats after one warm-up each.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
