# Copyright (c) mmfca contributors. All rights reserved.
"""The whole detector to ONNX Runtime with MMDeploy, checked against
MMDetection (``tools/deployment/deploy.py``; docs/deployment.md).

Every step is MMDeploy's or MMDetection's own: MMDeploy's ``torch2onnx``
(run under :func:`~mmfca.deployment.mmdeploy_shims.mmdeploy_export_shims`)
writes ``end2end.onnx``, its ``export2SDK`` the ``deploy.json``,
``pipeline.json`` and ``detail.json`` beside it; MMDeploy's ONNX Runtime
backend model (``End2EndModel``: pre-processing, the graph, the masks
pasted into the image) runs the graph; the reference is MMDetection's own
inference of the checkpoint (:func:`mmdet.apis.inference_detector`), and
``--eval`` runs MMDeploy's test runner and mmengine's with the config's
evaluator. What this module adds: the checks before the export (one line
each), the comparison of the detections (:func:`match_detections`) and
the summary.
"""
import contextlib
import copy
import os
import os.path as osp
import shutil
import warnings
from typing import Dict, Optional

import torch

from .mmdeploy_shims import mmdeploy_export_shims

#: The MMDeploy release the deploy configs and the shims are written for.
MMDEPLOY_VERSION = '1.3.1'
#: The graph MMDeploy writes, and the SDK's description files beside it.
ONNX_FILE = 'end2end.onnx'
SDK_FILES = ('deploy.json', 'pipeline.json', 'detail.json')
#: The deploy configs of configs/deploy/, by what the model outputs.
DEPLOY_CONFIGS = {
    'detection': 'detection_onnxruntime_dynamic.py',
    'instance-seg': 'instance-seg_onnxruntime_dynamic.py',
}
#: Detections compared: score at least SCORE_THR; the same detection: the
#: same label and box IoU above IOU_THR.
SCORE_THR, IOU_THR = 0.3, 0.9


class DeployError(RuntimeError):
    """Deployment cannot proceed; the message (one line) says why."""


def require_mmdeploy() -> str:
    """MMDeploy's version; a :class:`DeployError` saying how to install it
    (and onnxruntime) when either is missing."""
    install = (f'`make install` sets up mmdeploy {MMDEPLOY_VERSION}; '
               f'elsewhere: pip install --no-deps mmdeploy=={MMDEPLOY_VERSION}'
               ' && pip install aenum onnx onnxruntime (its declared '
               'dependencies would downgrade onnx and protobuf)')
    try:
        import mmdeploy
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise DeployError(f'{err.name or err} is not installed: {install}')
    return mmdeploy.__version__


def model_kind(cfg) -> str:
    """``'instance-seg'`` when the detector predicts masks (a mask head),
    else ``'detection'``; a :class:`DeployError` for other models."""
    scope = cfg.get('default_scope')
    if scope != 'mmdet':
        raise DeployError(
            f'the config\'s default_scope is {scope!r}; deploy.py takes '
            f'MMDetection detectors (default_scope \'mmdet\'); export '
            f'classifiers and segmentors with tools/deployment/export_onnx.py')
    model = cfg.model
    has_mask = model.get('mask_head') is not None or (
        isinstance(model.get('roi_head'), dict)
        and model.roi_head.get('mask_head') is not None)
    return 'instance-seg' if has_mask else 'detection'


def check_deploy_config(deploy_cfg, kind: str, path: str) -> None:
    """A :class:`DeployError` unless ``deploy_cfg`` exports an MMDetection
    model of ``kind`` to ONNX Runtime through ONNX."""
    codebase = deploy_cfg.get('codebase_config', {}).get('type')
    backend = deploy_cfg.get('backend_config', {}).get('type')
    outputs = list(deploy_cfg.get('onnx_config', {}).get('output_names', []))
    if codebase != 'mmdet' or backend != 'onnxruntime':
        raise DeployError(
            f'{path} deploys codebase {codebase!r} to backend {backend!r}; '
            f'deploy.py takes codebase \'mmdet\' to \'onnxruntime\' (the '
            f'configs in configs/deploy/)')
    want = ['dets', 'labels'] + (['masks'] if kind == 'instance-seg' else [])
    if outputs != want:
        raise DeployError(
            f'{path} names the outputs {outputs}, but this {kind} model '
            f'gives {want}: use configs/deploy/{DEPLOY_CONFIGS[kind]}')


def load_model(cfg, checkpoint: str) -> torch.nn.Module:
    """MMDetection's model of ``cfg`` with every tensor of ``checkpoint``
    (strict; ``'none'``: the config's initialisation), ready for
    :func:`mmdet.apis.inference_detector`. The checkpoint loads by mmfca's
    trust rule (:func:`mmfca.utils.mark_trusted`: fully unpickled only
    inside ``cfg.work_dir``, where the config has one; elsewhere tensors,
    plain data and mmengine's training state).

    Raises:
        DeployError: If the checkpoint cannot be read or does not fit.
    """
    import pickle

    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import load_checkpoint

    from mmfca.utils import mark_trusted
    from mmfca.utils.checkpoint import (NotACheckpointError,
                                        UnsafeCheckpointError)
    backbone = cfg.model.get('backbone', {})
    if isinstance(backbone, dict):
        # the checkpoint holds the weights (or, with "none", random ones)
        backbone['init_cfg'] = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    if checkpoint == 'none':
        model.init_weights()
        meta = {}
    else:
        work_dir = cfg.get('work_dir')
        trusted = mark_trusted(checkpoint, work_dir) if work_dir else None
        try:
            meta = load_checkpoint(model, trusted or checkpoint,
                                   map_location='cpu', strict=True,
                                   logger='silent').get('meta', {})
        except (NotACheckpointError, UnsafeCheckpointError,
                pickle.UnpicklingError, EOFError) as err:
            raise DeployError(f'cannot read checkpoint {checkpoint}: '
                              f'{one_line(err)}')
        except RuntimeError as err:
            raise DeployError(f'checkpoint {checkpoint} does not fit the '
                              f'config\'s model: {one_line(err)}')
    model.cfg = cfg
    model.dataset_meta = meta.get('dataset_meta') or dict(
        classes=cfg.get('metainfo', {}).get('classes', ()))
    return model.eval()


def one_line(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = ' '.join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


@contextlib.contextmanager
def _quiet_export():
    """The tracer's notes on MMDeploy's and MMDetection's Python control
    flow (the graph is checked afterwards, not trusted on them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings(
            'ignore', message='Exporting aten::index operator',
            category=UserWarning)
        yield


def export(model_cfg, deploy_cfg, checkpoint: Optional[str], img,
           work_dir: str) -> Dict:
    """MMDeploy's ``torch2onnx`` and ``export2SDK`` into ``work_dir``.

    The files are written into ``work_dir/.partial`` and moved into
    ``work_dir`` once all are there (a failed export leaves no
    ``end2end.onnx``).

    Args:
        model_cfg (Config): The model's config.
        deploy_cfg (Config): An MMDeploy deploy config (configs/deploy/).
        checkpoint (str | None): What MMDeploy loads (a path, possibly
            with mmfca's trusted scheme); None: the config's init.
        img (str | ndarray): The image traced through the model.
        work_dir (str): The output folder.

    Returns:
        dict: ``onnx`` (the graph's path), ``shims`` (the torch shims
        applied), ``op_types`` and ``domains`` of the graph.
    """
    import onnx
    from mmdeploy.apis import torch2onnx
    from mmdeploy.backend.sdk.export_info import export2SDK
    partial = osp.join(work_dir, '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        # copies: export2SDK rewrites the test pipeline it describes in
        # place
        with _quiet_export(), mmdeploy_export_shims() as shims:
            torch2onnx(img, partial, ONNX_FILE, copy.deepcopy(deploy_cfg),
                       copy.deepcopy(model_cfg), checkpoint, 'cpu')
        export2SDK(copy.deepcopy(deploy_cfg), copy.deepcopy(model_cfg),
                   partial, pth=checkpoint or '', device='cpu')
        for name in SDK_FILES + (ONNX_FILE, ):
            os.replace(osp.join(partial, name), osp.join(work_dir, name))
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    path = osp.join(work_dir, ONNX_FILE)
    nodes = onnx.load(path).graph.node
    return dict(onnx=path, shims=shims,
                op_types=sorted({n.op_type for n in nodes}),
                domains=sorted({n.domain for n in nodes}))


def build_backend(model_cfg, deploy_cfg, onnx_file: str):
    """MMDeploy's task processor and its ONNX Runtime model of
    ``onnx_file`` (``End2EndModel``: MMDetection's data preprocessor, the
    graph in an ``InferenceSession``, the masks pasted in Python)."""
    from mmdeploy.apis.utils import build_task_processor
    task = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = task.build_backend_model([onnx_file],
                                     task.update_data_preprocessor)
    return task, model


def predict_backend(task, model, img):
    """The backend model's ``DetDataSample`` for one image (path or
    array), through MMDeploy's test pipeline (``create_input``)."""
    data, _ = task.create_input(img, None)
    with torch.no_grad():
        return model.test_step(data)[0]


def predict_pytorch(model, img):
    """MMDetection's own inference of ``img``: ``DetDataSample``."""
    from mmdet.apis import inference_detector
    return inference_detector(model, img)


def match_detections(reference, candidate, score_thr: float = SCORE_THR,
                     iou_thr: float = IOU_THR) -> Dict:
    """Pair each detection of ``reference`` scoring at least ``score_thr``
    with the ``candidate`` detection of the same label that overlaps it
    most (boxes), each candidate used once, in the reference's score order.

    Args:
        reference (InstanceData): ``bboxes``, ``scores``, ``labels`` and
            optionally ``masks`` (bool, image-sized).
        candidate (InstanceData): The same fields.
        score_thr (float): The reference detections compared.
        iou_thr (float): A pair matches when its box IoU exceeds it.

    Returns:
        dict: ``compared`` (reference detections at ``score_thr``),
        ``matched`` (of them, paired with IoU > ``iou_thr``), ``min_iou``
        (of the matched pairs' boxes), ``max_box_diff`` (px),
        ``max_score_diff`` and, with masks, ``min_mask_iou``; the
        statistics are None when nothing matched.
    """
    from mmdet.structures.bbox import bbox_overlaps
    keep = reference.scores >= score_thr
    ref = reference[keep]
    order = ref.scores.argsort(descending=True)
    ref = ref[order]
    ious = bbox_overlaps(ref.bboxes.float(), candidate.bboxes.float())
    same = ref.labels[:, None] == candidate.labels[None, :]
    ious = torch.where(same, ious, ious.new_full((), -1.))
    pairs = []
    for i in range(len(ref)):
        j = int(ious[i].argmax()) if ious.shape[1] else -1
        if j >= 0 and ious[i, j] > iou_thr:
            pairs.append((i, j))
            ious[:, j] = -1
    report = dict(compared=len(ref), matched=len(pairs), min_iou=None,
                  max_box_diff=None, max_score_diff=None)
    has_masks = 'masks' in ref and 'masks' in candidate
    if has_masks:
        report['min_mask_iou'] = None
    if not pairs:
        return report
    i, j = (torch.tensor(idx) for idx in zip(*pairs))
    box_ious = bbox_overlaps(ref.bboxes[i].float(),
                             candidate.bboxes[j].float(), is_aligned=True)
    report.update(
        min_iou=float(box_ious.min()),
        max_box_diff=float((ref.bboxes[i] - candidate.bboxes[j]).abs().max()),
        max_score_diff=float(
            (ref.scores[i] - candidate.scores[j]).abs().max()))
    if has_masks:
        a, b = ref.masks[i].bool(), candidate.masks[j].bool()
        inter = (a & b).flatten(1).sum(1).float()
        union = (a | b).flatten(1).sum(1).float()
        # two empty masks are the same mask
        mask_iou = torch.where(union > 0, inter / union.clamp(min=1),
                               torch.ones_like(union))
        report['min_mask_iou'] = float(mask_iou.min())
    return report


def evaluate_backend(task, model, work_dir: str) -> Dict:
    """The config's test evaluator on its test set, the backend model
    predicting: MMDeploy's test runner (``DeployTestRunner``)."""
    runner = task.build_test_runner(model, work_dir)
    return runner.test()


def evaluate_pytorch(cfg, checkpoint: str, work_dir: str) -> Dict:
    """The config's test evaluator on its test set, PyTorch predicting:
    mmengine's runner as ``tools/test.py`` builds it."""
    from mmfca.utils import build_runner, mark_trusted
    cfg = cfg.copy()
    cfg.load_from = mark_trusted(checkpoint, cfg.work_dir) or checkpoint
    cfg.work_dir = work_dir
    # a visualizer of its own (the config's is a process-wide instance)
    cfg.visualizer.name = f'mmfca-deploy-pytorch@{work_dir}'
    return build_runner(cfg).test()
