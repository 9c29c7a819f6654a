# Copyright (c) mmfca contributors. All rights reserved.
"""Deploy an MMDetection detector, MMPretrain classifier or MMSegmentation
segmentor (FcaNet backbone) to ONNX Runtime with MMDeploy, and check it
against PyTorch.

    python tools/deployment/deploy.py CONFIG CHECKPOINT --work-dir DIR \\
        [--eval] [--img IMAGE] [--part model|features] [--deploy-cfg FILE]

Writes DIR/end2end.onnx (standard ONNX operators only) with MMDeploy's
SDK files, runs ONNX Runtime and PyTorch on an image (--img, or the first
of the config's test set) and prints how they differ (detections matched,
classifier scores, segmentation labels). --eval evaluates both on the test
set. --part features writes DIR/features.onnx instead: the backbone and
neck, checked against PyTorch at three input sizes.

The deploy config (configs/deploy/) follows the model. The checkpoint is
read once, by mmfca's trust rule (tools/train.py's work as they are). The
libraries' output goes to DIR/deploy.log. An existing DIR/end2end.onnx is
kept unless --force.
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import sys
import time
import traceback

import mmengine
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from mmfca.apis import init_model, one_line
from mmfca.deployment import mmdeploy_ort as ort
from mmfca.deployment.mmdeploy_ort import DeployError

DEPLOY_DIR = osp.abspath(osp.join(__file__, '../../../configs/deploy'))
#: The graph each --part writes.
PARTS = {'model': ort.ONNX_FILE, 'features': ort.FEATURES_FILE}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add('config')
    add('checkpoint')
    add('--work-dir', required=True, help='output folder')
    add('--eval', action='store_true',
        help='evaluate ONNX Runtime and PyTorch on the config\'s test set')
    add('--img', help='the image traced and compared')
    add('--part', choices=PARTS, default='model')
    add('--deploy-cfg', help='an MMDeploy deploy config (default: '
        'configs/deploy/, by the model)')
    add('--opset', type=int, choices=range(11, 18), metavar='N',
        help='ONNX opset, 11-17 (default: the deploy config\'s, 16)')
    add('--force', action='store_true', help='overwrite an existing graph')
    add('--cfg-options', nargs='+', action=DictAction,
        help='overrides of the model config')
    return parser.parse_args(argv)


def main(argv=None):
    try:
        return run(parse_args(argv))
    except DeployError as err:
        raise SystemExit(f'deploy.py: error: {err}')


def check_inputs(args):
    """Everything that needs no model, each refused in one line: ``(cfg,
    kind, deploy_cfg, image, number of test images)``."""
    from mmengine.registry import DATASETS

    from mmfca.utils import load_config
    ort.require_mmdeploy()
    try:
        cfg = load_config(args.config, args.cfg_options)
    except FileNotFoundError as err:
        raise DeployError(str(err))
    kind = ort.model_kind(cfg)
    args.deploy_cfg = args.deploy_cfg or osp.join(
        DEPLOY_DIR, f'{kind}_onnxruntime_dynamic.py')
    if not osp.isfile(args.deploy_cfg):
        shipped = sorted(f for f in os.listdir(DEPLOY_DIR) if f[-3:] == '.py')
        raise DeployError(f'deploy config {args.deploy_cfg} not found; '
                          f'configs/deploy/ has {shipped}')
    deploy_cfg = Config.fromfile(args.deploy_cfg)
    ort.check_deploy_config(deploy_cfg, kind, args.deploy_cfg)
    if args.opset is not None:
        deploy_cfg.onnx_config.opset_version = args.opset
    for what, path in (('checkpoint', args.checkpoint), ('image', args.img)):
        if path and not osp.isfile(path):
            raise DeployError(f'{what} {path} not found')
    onnx_file = osp.join(args.work_dir, PARTS[args.part])
    if osp.exists(onnx_file) and not args.force:
        raise DeployError(f'{onnx_file} exists; pass --force to overwrite '
                          f'it or --work-dir for another folder')
    if args.img and not args.eval:
        return cfg, kind, deploy_cfg, args.img, 0
    try:  # pycocotools prints
        with contextlib.redirect_stdout(io.StringIO()), \
                DefaultScope.overwrite_default_scope(cfg.default_scope):
            dataset = DATASETS.build(cfg.test_dataloader.dataset)
    except OSError as err:
        raise DeployError(f'the config\'s test set cannot be read '
                          f'({one_line(err)}); pass --img IMAGE to deploy '
                          f'without it')
    if not len(dataset):
        raise DeployError('the config\'s test set is empty; pass --img IMAGE')
    img = args.img or dataset.get_data_info(0)['img_path']
    return cfg, kind, deploy_cfg, img, len(dataset)


class _Log(io.TextIOBase):
    """The libraries' output: the run's log file while a run lasts, else
    the console (loggers made in a run keep this stream)."""
    file = None

    def write(self, text):
        return (self.file or sys.stdout).write(text)

    def flush(self):
        (self.file or sys.stdout).flush()


LOG = _Log()


def run(args):
    """:func:`deploy` with the libraries' output in DIR/deploy.log; the
    report into DIR/deploy_check.json, the summary printed."""
    from mmengine.logging import MMLogger
    cfg, kind, deploy_cfg, img, num_test = check_inputs(args)
    os.makedirs(args.work_dir, exist_ok=True)
    log_path, console = osp.join(args.work_dir, 'deploy.log'), sys.stdout

    def say(line):
        for stream in (LOG, console):
            print(f'[deploy] {line}', file=stream, flush=True)

    # prints and loggers made here (MMDeploy's, a current mmengine one) into
    # the log; the caller's scope restored (MMDeploy sets one)
    try:
        with open(log_path, 'w') as LOG.file, contextlib.redirect_stdout(
                LOG), contextlib.redirect_stderr(LOG), \
                DefaultScope.overwrite_default_scope(cfg.default_scope):
            say(f'{kind} {args.part} to ONNX Runtime; the libraries\' '
                f'output is in {log_path}')
            MMLogger.get_instance(f'mmfca-deploy-{time.time()}',
                                  logger_name='mmfca-deploy')
            report, lines = deploy(args, cfg, kind, deploy_cfg, img,
                                   num_test, say)
    finally:
        LOG.file = None
    mmengine.dump(report, osp.join(args.work_dir, 'deploy_check.json'),
                  indent=1)
    print('\n[deploy] summary\n' + '\n'.join('  ' + line for line in lines))
    return report


def deploy(args, cfg, kind, deploy_cfg, img, num_test, say):
    """Export, compare, ``--eval``: the report and the summary's lines."""
    from mmdeploy.apis import build_task_processor
    try:  # the one read: the export and the evaluation take this model
        pytorch = init_model(cfg, args.checkpoint, cfg.get('work_dir'))
    except ValueError as err:
        raise DeployError(str(err))
    task = build_task_processor(cfg, deploy_cfg, 'cpu')
    opset = deploy_cfg.onnx_config.opset_version
    say(f'exporting with MMDeploy ({args.deploy_cfg}, opset {opset})')
    try:
        if args.part == 'features':
            exported = ort.export_features(pytorch, task, img, args.work_dir)
        else:
            exported = ort.export(pytorch, task, img, args.work_dir,
                                  args.checkpoint)
    except Exception as err:  # a model or operator MMDeploy cannot take
        LOG.write(traceback.format_exc())
        raise DeployError(
            f'MMDeploy could not export {args.config} '
            f'({type(err).__name__}: {one_line(err, 200)}); the traceback '
            f'is in {osp.join(args.work_dir, "deploy.log")}') from err
    report = dict(config=args.config, checkpoint=args.checkpoint, img=img,
                  deploy_cfg=args.deploy_cfg, opset=opset, export=exported)
    lines = ort.export_lines(exported)
    if args.part == 'features':
        return report, lines
    say(f'ONNX Runtime and PyTorch on {img}')
    backend = task.build_backend_model([exported['onnx']])
    report['compared'], text = ort.compare(kind, task, pytorch, backend, img)
    lines.append(f'ONNX Runtime vs PyTorch on {img}: {text}')
    if args.eval:
        say(f'evaluating ONNX Runtime and PyTorch on the {num_test} test '
            f'images (MMDeploy\'s test runner)')
        report['eval'] = ort.evaluate(task, dict(
            onnxruntime=backend, pytorch=pytorch), args.work_dir)
        lines.append(f'evaluation on the config\'s test set ({num_test} '
                     f'images):')
        lines += ['  ' + line for line in ort.metrics_lines(
            report['eval']['onnxruntime'], report['eval']['pytorch'])]
    return report, lines


if __name__ == '__main__':
    main()
