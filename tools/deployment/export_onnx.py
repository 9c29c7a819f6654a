# Copyright (c) mmfca contributors. All rights reserved.
"""Export an FcaNet model to ONNX (dynamic batch, height and width) and
check the graph with onnxruntime against PyTorch at several input sizes.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT \\
        [--part backbone|features|tensor] [--shape H W] [--out FILE]

``--part features`` exports a detector's backbone + neck (the whole
two-stage detector, with its RPN, NMS and heads, goes through MMDeploy:
tools/deployment/deploy.py); ``--part tensor`` the whole tensor forward of
single-stage detectors and classifiers. The FCA layers need no custom operator. The checkpoint loads
without running code from it: tensors, plain data and the training state
of mmengine's checkpoints (so a tools/train.py or ``make demo`` checkpoint
works as it is); a checkpoint inside ``--work-dir`` (your own run's) is
fully unpickled. An existing output file is kept unless ``--force``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import warnings

import torch
from mmengine.config import DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmfca.deployment import (PARTS, check_onnx, export_onnx, exportable,
                              onnx_domains, output_path)
from mmfca.utils import load_config, mark_trusted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint, or "none" for the '
                        'config\'s initialisation (for trying the export)')
    parser.add_argument('--part', choices=PARTS, default='backbone')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        metavar=('H', 'W'), help='export input size '
                        '(default 224x224; 800x1216 for detectors)')
    parser.add_argument('--check-shapes', type=int, nargs='+', default=None,
                        metavar='H W', help='more H W pairs to check '
                        '(default: the export size, a smaller and a larger '
                        'one of other aspect ratios)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--out', help='output .onnx file')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing output file')
    parser.add_argument('--work-dir',
                        help='your run\'s work dir: its checkpoints are '
                        'trusted (fully unpickled)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build_model(cfg, checkpoint):
    """The config's model in eval mode, weights from ``checkpoint``."""
    from mmengine.registry import MODELS
    backbone = cfg.model.get('backbone', {})
    if isinstance(backbone, dict):
        # the checkpoint holds the weights (or, with "none", random ones)
        backbone['init_cfg'] = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    if checkpoint == 'none':
        model.init_weights()
    else:
        trusted = mark_trusted(checkpoint, cfg.work_dir)
        load_checkpoint(model, trusted or checkpoint, map_location='cpu',
                        strict=True)
    model.eval()
    return model


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.checkpoint != 'none' and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint {args.checkpoint} not found.')
    out = output_path(args.config, args.part, args.out)
    if osp.exists(out) and not args.force:
        raise FileExistsError(f'{out} exists; pass --force to overwrite it '
                              f'or --out for another file.')
    detector = cfg.get('default_scope') == 'mmdet'
    h, w = args.shape or ((800, 1216) if detector else (224, 224))
    checks = args.check_shapes or [h * 3 // 4 // 32 * 32 or 32,
                                   w // 2 // 32 * 32 or 32,
                                   h * 5 // 4, w * 5 // 4 + 7]
    if len(checks) % 2:
        raise ValueError(f'--check-shapes takes H W pairs, got {checks}.')
    shapes = [(args.batch, 3, h, w)] + [
        (args.batch + 1, 3, checks[i], checks[i + 1])
        for i in range(0, len(checks), 2)
    ]
    model = exportable(build_model(cfg, args.checkpoint), args.part)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with warnings.catch_warnings():
        # the tracer's notes on the shape checks and constants of the FCA
        # layers (the exported graph is checked at other sizes below)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        export_onnx(model, torch.randn(*shapes[0]), out, args.opset)
    domains = onnx_domains(out)
    report = check_onnx(out, model, shapes)
    for row in report:
        print(f'input {row["shape"]}: {len(row["output_shapes"])} outputs, '
              f'max relative error vs PyTorch {row["max_rel_error"]:.2e}')
    print(f'wrote {out}; operator domains: '
          f'{sorted(d or "ai.onnx (standard)" for d in domains)}')
    summary = dict(onnx=out, domains=sorted(domains), checks=report)
    with open(osp.splitext(out)[0] + '_check.json', 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
