# Copyright (c) mmfca contributors. All rights reserved.
"""Deploy a whole MMDetection detector (FcaNet backbone, heads, NMS, masks)
to ONNX Runtime with MMDeploy, and check it against PyTorch.

    python tools/deployment/deploy.py CONFIG CHECKPOINT --work-dir DIR \\
        [--eval] [--img IMAGE] [--deploy-cfg FILE] [--opset N]

Writes DIR/end2end.onnx (standard ONNX operators only: no MMDeploy custom
op library is needed) with MMDeploy's deploy.json, pipeline.json and
detail.json; then runs ONNX Runtime (MMDeploy's backend model) and
MMDetection's own inference on a real image (the first of the config's
test set unless --img) and prints how their detections differ. --eval
evaluates the ONNX model with the config's test evaluator on its test set
and prints PyTorch's metrics beside it.

The deploy config (configs/deploy/: ONNX Runtime, dynamic shapes, opset 16)
is chosen by the model: instance-seg for a model with a mask head, else
detection. The checkpoint loads by mmfca's trust rule (a tools/train.py or
`make demo` checkpoint works as it is). An existing DIR/end2end.onnx is
kept unless --force.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import re
import sys
import traceback

from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from mmfca.deployment import mmdeploy_ort
from mmfca.deployment.mmdeploy_ort import DeployError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEPLOY_DIR = osp.join(ROOT, 'configs', 'deploy')
#: Opsets MMDeploy 1.3.1 and the TorchScript exporter take; 16 is the
#: verified one (below 16 RoIAlign is emulated: docs/deployment.md).
OPSETS = range(11, 18)
#: Lines of the libraries' output that the console shows (the evaluation's
#: progress and result, errors); all of it is in DIR/deploy.log.
ECHOED = re.compile(r'Epoch\(test\)|Error|Traceback')
LOG_PREFIX = re.compile(r'^\d+/\d+ [\d:]+ - mmengine - \w+ - ')
#: The metrics printed side by side (COCO's).
SHOWN = ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', required=True,
                        help='output folder (end2end.onnx, the SDK files, '
                        'deploy_check.json, the evaluation logs)')
    parser.add_argument('--eval', action='store_true',
                        help='evaluate the ONNX model and PyTorch on the '
                        'config\'s test set')
    parser.add_argument('--img', help='the image traced and compared '
                        '(default: the first of the config\'s test set)')
    parser.add_argument('--deploy-cfg', help='an MMDeploy deploy config '
                        '(default: configs/deploy/, by the model)')
    parser.add_argument('--opset', type=int, choices=OPSETS, default=None,
                        metavar='N', help='ONNX opset, one of 11-17 '
                        '(default: the deploy config\'s, 16)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing end2end.onnx')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of the model config')
    return parser.parse_args(argv)


def test_images(cfg):
    """The image paths of the config's test set."""
    from mmengine.registry import DATASETS
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    dataset_cfg['lazy_init'] = True
    try:
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            dataset = DATASETS.build(dataset_cfg)
            dataset.full_init()
    except OSError as err:
        raise DeployError(f'the config\'s test set cannot be read '
                          f'({mmdeploy_ort.one_line(err)}); pass --img '
                          f'IMAGE to deploy without it')
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


def summary_lines(exported, compared, img):
    """What the console shows of the export and the comparison."""
    import torch
    ops = [o for o in exported['op_types']
           if o in ('RoiAlign', 'NonMaxSuppression')]
    standard = exported['domains'] == ['']
    lines = [f'wrote {exported["onnx"]} and '
             f'{", ".join(mmdeploy_ort.SDK_FILES)} beside it; operators: '
             + ('standard ONNX only' if standard else
                f'domains {exported["domains"]}')
             + f' ({len(exported["op_types"])} types, incl. '
             f'{", ".join(ops) or "no RoiAlign or NMS"})']
    if exported['shims']:
        lines.append(f'torch {torch.__version__}: exported '
                     f'with the shims {", ".join(exported["shims"])} '
                     f'(mmfca.deployment.mmdeploy_shims)')
    c = compared
    line = (f'ONNX Runtime vs PyTorch (MMDetection) on {img}: {c["matched"]} '
            f'of {c["compared"]} detections with score >= '
            f'{mmdeploy_ort.SCORE_THR} matched (same label, box IoU > '
            f'{mmdeploy_ort.IOU_THR})')
    if c['matched']:
        line += (f'; largest differences: box {c["max_box_diff"]:.2e} px, '
                 f'score {c["max_score_diff"]:.2e}')
        if c.get('min_mask_iou') is not None:
            line += f', smallest mask IoU {c["min_mask_iou"]:.4f}'
    lines.append(line)
    lines.append(f'detections of ONNX Runtime / PyTorch: '
                 f'{c["onnx_detections"]} / {c["pytorch_detections"]}')
    return lines


def metrics_lines(onnx, pytorch):
    """The COCO metrics side by side."""
    lines = []
    for key in SHOWN:
        full = f'coco/{key}'
        if full in onnx and full in pytorch:
            lines.append(f'{key:<12} ONNX Runtime {onnx[full]:.3f}   '
                         f'PyTorch {pytorch[full]:.3f}   difference '
                         f'{onnx[full] - pytorch[full]:+.3f}')
    return lines


class Console:
    """The libraries' stdout and stderr while the tool runs: every line into
    the log file, the :data:`ECHOED` ones (test progress, errors) to the
    console too; :meth:`say` writes a line of the tool's own."""

    def __init__(self, log, console):
        self.log, self.console, self.pending = log, console, ''

    def write(self, text):
        self.log.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split('\n')
        for line in lines:
            if ECHOED.search(line):
                self.console.write('  ' + LOG_PREFIX.sub('', line) + '\n')
        return len(text)

    def flush(self):
        self.log.flush()
        self.console.flush()

    def isatty(self):  # progress bars draw lines, not a terminal's redraws
        return False

    @property
    def encoding(self):
        return self.log.encoding

    def say(self, line):
        self.log.write(f'[deploy] {line}\n')
        self.console.write(f'[deploy] {line}\n')
        self.flush()


@contextlib.contextmanager
def loggers_to(stream):
    """mmengine's loggers made before the redirection hold the console's
    stream: point their console handlers at ``stream`` while it lasts."""
    import logging

    from mmengine.logging import MMLogger
    moved = []
    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and \
                    handler.stream in (sys.__stdout__, sys.__stderr__,
                                       stream.console):
                moved.append((handler, handler.setStream(stream)))
    try:
        yield
    finally:
        for handler, old in moved:
            handler.setStream(old)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except DeployError as err:
        raise SystemExit(f'deploy.py: error: {err}')


def check_inputs(args):
    """Everything that needs no model: the model config, the deploy
    config, the files named, the test set where it is needed. Returns
    ``(cfg, kind, deploy path, deploy_cfg, test images or None)``."""
    from mmfca.utils import load_config
    mmdeploy_ort.require_mmdeploy()
    try:
        cfg = load_config(args.config, args.cfg_options)
    except FileNotFoundError as err:
        raise DeployError(str(err))
    kind = mmdeploy_ort.model_kind(cfg)
    deploy_path = args.deploy_cfg or osp.join(
        DEPLOY_DIR, mmdeploy_ort.DEPLOY_CONFIGS[kind])
    if not osp.isfile(deploy_path):
        raise DeployError(f'deploy config {deploy_path} not found; '
                          f'configs/deploy/ has '
                          f'{sorted(os.listdir(DEPLOY_DIR))}')
    deploy_cfg = Config.fromfile(deploy_path)
    mmdeploy_ort.check_deploy_config(deploy_cfg, kind, deploy_path)
    if args.opset is not None:
        deploy_cfg.onnx_config.opset_version = args.opset
    if not osp.isfile(args.checkpoint):
        raise DeployError(f'checkpoint {args.checkpoint} not found')
    onnx_file = osp.join(args.work_dir, mmdeploy_ort.ONNX_FILE)
    if osp.exists(onnx_file) and not args.force:
        raise DeployError(f'{onnx_file} exists; pass --force to overwrite '
                          f'it or --work-dir for another folder')
    if args.img and not osp.isfile(args.img):
        raise DeployError(f'image {args.img} not found')
    images = None
    if args.eval or not args.img:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools'
            images = test_images(cfg)
        if not images:
            raise DeployError('the config\'s test set is empty; pass --img '
                              'IMAGE')
    return cfg, kind, deploy_path, deploy_cfg, images


def run(args):
    cfg, kind, deploy_path, deploy_cfg, images = check_inputs(args)
    os.makedirs(args.work_dir, exist_ok=True)
    log_path = osp.join(args.work_dir, 'deploy.log')
    with open(log_path, 'w') as log:
        console = Console(log, sys.stdout)
        console.say(f'{kind} model to ONNX Runtime; the libraries\' output '
                    f'is in {log_path}')
        # under the config's scope, the caller's restored afterwards
        # (MMDeploy's task processors leave a global 'mmdet' scope)
        with contextlib.redirect_stdout(console), \
                contextlib.redirect_stderr(console), loggers_to(console), \
                DefaultScope.overwrite_default_scope(cfg.default_scope):
            report, lines = deploy(args, cfg, deploy_path, deploy_cfg,
                                   images, console)
    with open(osp.join(args.work_dir, 'deploy_check.json'), 'w') as f:
        json.dump(report, f, indent=1, default=float)
    print('\n[deploy] summary')
    for line in lines:
        print('  ' + line)
    return report


def deploy(args, cfg, deploy_path, deploy_cfg, images, console):
    """Export, compare and (``--eval``) evaluate; the report and the
    summary's lines."""
    from mmfca.utils import mark_trusted
    img = args.img or images[0]
    # read and checked in full before MMDeploy loads it (MMDeploy would
    # take a checkpoint of another model with a warning)
    pytorch = mmdeploy_ort.load_model(cfg.copy(), args.checkpoint)
    console.say(f'exporting with MMDeploy\'s torch2onnx ({deploy_path}, '
                f'opset {deploy_cfg.onnx_config.opset_version})')
    trusted = mark_trusted(args.checkpoint, cfg.work_dir)
    try:
        exported = mmdeploy_ort.export(cfg, deploy_cfg,
                                       trusted or args.checkpoint, img,
                                       args.work_dir)
    except Exception as err:  # MMDeploy's or the exporter's: a model or
        # an operator it cannot take; the traceback goes into deploy.log
        console.log.write(traceback.format_exc())
        raise DeployError(
            f'MMDeploy could not export {args.config} '
            f'({type(err).__name__}: {mmdeploy_ort.one_line(err, 200)}); '
            f'the traceback is in '
            f'{osp.join(args.work_dir, "deploy.log")}') from err
    console.say(f'ONNX Runtime and PyTorch on {img}')
    task, backend = mmdeploy_ort.build_backend(cfg, deploy_cfg,
                                               exported['onnx'])
    got = mmdeploy_ort.predict_backend(task, backend, img).pred_instances
    ref = mmdeploy_ort.predict_pytorch(pytorch, img).pred_instances
    compared = mmdeploy_ort.match_detections(ref, got)
    compared.update(onnx_detections=len(got), pytorch_detections=len(ref))
    report = dict(config=args.config, checkpoint=args.checkpoint, img=img,
                  deploy_cfg=deploy_path,
                  opset=deploy_cfg.onnx_config.opset_version,
                  export=exported, compared=compared)
    lines = summary_lines(exported, compared, img)
    if args.eval:
        console.say(f'evaluating ONNX Runtime on the {len(images)} test '
                    f'images (MMDeploy\'s test runner)')
        onnx_metrics = mmdeploy_ort.evaluate_backend(
            task, backend, osp.join(args.work_dir, 'eval_onnxruntime'))
        console.say('evaluating PyTorch on them (mmengine\'s runner, as '
                    'tools/test.py)')
        torch_metrics = mmdeploy_ort.evaluate_pytorch(
            cfg, args.checkpoint, osp.join(args.work_dir, 'eval_pytorch'))
        report['eval'] = dict(onnxruntime=onnx_metrics, pytorch=torch_metrics)
        lines.append(f'evaluation on the config\'s test set ({len(images)} '
                     f'images):')
        lines += ['  ' + line
                  for line in metrics_lines(onnx_metrics, torch_metrics)]
    return report, lines


if __name__ == '__main__':
    main()
