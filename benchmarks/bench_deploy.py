# Copyright (c) mmfca contributors. All rights reserved.
"""Mask R-CNN FcaNet-50 at 800x1216 on the CPU: PyTorch (MMDetection's
model) against ONNX Runtime (the graph tools/deployment/deploy.py writes,
run by MMDeploy's backend model), per image, pre- and post-processing
included; ONNX Runtime with MMDeploy's mask pasting (each mask sampled over
the whole image) and with mmfca's (over each box, MMDetection's function:
mmfca.deployment.mask_paste), which deploy.py uses. One run, medians of
interleaved repeats, for two R-CNN score thresholds: the config's 0.05
(random weights score below it: no detections) and 0 (100 detections
through the mask head, as a trained detector on a busy image).

The weights are the config's initialisation (seeded).
Run: python benchmarks/bench_deploy.py [--repeats N] [--threads N]
"""
import argparse
import contextlib
import os
import os.path as osp
import sys
import tempfile

import numpy as np
import torch
from mmengine.config import Config

from timing import header, interleaved_medians, table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'det', 'mask-rcnn_fca50_fpn_1x_coco.py')
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


def measure(score_thr, repeats, img, tmp):
    """One row: export at ``score_thr``, then the three contenders."""
    from mmdeploy.apis import build_task_processor

    from mmfca.apis import init_model
    from mmfca.deployment import masks_pasted_per_box
    from mmfca.deployment import mmdeploy_ort as ort
    cfg = Config.fromfile(CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = score_thr
    torch.manual_seed(0)
    model = init_model(cfg)
    work = osp.join(tmp, str(score_thr))
    os.makedirs(work)
    print(f'exporting (score_thr {score_thr}; a minute or two)...',
          flush=True)
    task = build_task_processor(cfg, Config.fromfile(DEPLOY_CFG), 'cpu')
    exported = ort.export(model, task, img, work)
    backend = task.build_backend_model([exported['onnx']])

    def predict(model, pasting=contextlib.nullcontext):
        """As deploy.py's comparison: MMDeploy's input, a data sample."""
        with torch.no_grad(), pasting():
            return model.test_step(task.create_input(img, None)[0])[0]

    runs = {
        'pytorch': lambda: predict(model),
        'mmdeploy': lambda: predict(backend),
        'mmfca': lambda: predict(backend, masks_pasted_per_box),
    }
    found = {k: fn().pred_instances for k, fn in runs.items()}
    same = bool(torch.equal(found['mmdeploy'].masks, found['mmfca'].masks)
                ) if 'masks' in found['mmfca'] else None
    times = interleaved_medians(runs, repeats, warmup=1)
    return [f'{len(found["pytorch"])} / {len(found["mmfca"])}',
            f'{times["pytorch"]:.2f}', f'{times["mmdeploy"]:.2f}',
            f'{times["mmfca"]:.2f}',
            f'{times["pytorch"] / times["mmdeploy"]:.2f}',
            f'{times["pytorch"] / times["mmfca"]:.2f}',
            {True: 'yes', False: 'NO', None: '-'}[same]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    img = image()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [[f'{thr}'] + measure(thr, args.repeats, img, tmp)
                for thr in (0.05, 0.0)]
    import onnxruntime
    print()
    print(header('Mask R-CNN FcaNet-50 at 800x1216, PyTorch vs ONNX Runtime '
                 '(CPU)'))
    print(f'`python benchmarks/bench_deploy.py --repeats {args.repeats}`; '
          f'onnxruntime {onnxruntime.__version__}, opset 16; load average '
          f'{os.getloadavg()[0]:.1f} at the end\n')
    print(table(['R-CNN score_thr', 'detections (PyTorch / ORT)',
                 'PyTorch s', 'ORT, MMDeploy\'s paste s',
                 'ORT, per-box paste s', 'PyTorch / ORT (MMDeploy\'s)',
                 'PyTorch / ORT (per box)', 'masks equal'], rows))
    print(f'\nper image, pre- and post-processing included; median of '
          f'{args.repeats} interleaved repeats after one warm-up each.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
