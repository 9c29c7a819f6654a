# Copyright (c) mmfca contributors. All rights reserved.
"""A detector, classifier or segmentor to ONNX Runtime with MMDeploy,
checked against PyTorch (``tools/deployment/deploy.py``;
docs/deployment.md).

Every step is MMDeploy's or the codebase's own: MMDeploy's ``torch2onnx``
(under :func:`~mmfca.deployment.mmdeploy_shims.mmdeploy_export_shims`)
writes ``end2end.onnx``, ``export2SDK`` the ``deploy.json``,
``pipeline.json`` and ``detail.json`` beside it; MMDeploy's task processor
prepares the image and builds the ONNX Runtime backend model; its test
runner and mmengine's evaluate the two models with the config's evaluator.
What this module adds: the checks before the export (one line each), the
comparison (:func:`compare`), the backbone + neck export
(:func:`export_features`) and MMDetection's mask pasting in MMDeploy's
backend model (:func:`~mmfca.deployment.mask_paste.masks_pasted_per_box`).
"""
import contextlib
import copy
import os
import os.path as osp
import shutil
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch

from .builder import one_line
from .mask_paste import masks_pasted_per_box
from .mmdeploy_shims import mmdeploy_export_shims

#: The MMDeploy release the deploy configs and the shims are written for.
MMDEPLOY_VERSION = '1.3.1'
#: The graph MMDeploy writes, and the SDK's description files beside it.
ONNX_FILE = 'end2end.onnx'
SDK_FILES = ('deploy.json', 'pipeline.json', 'detail.json')
#: What is deployed, by the model: MMDeploy codebase and graph outputs; the
#: deploy config of configs/deploy/ is ``<kind>_onnxruntime_dynamic.py``.
KINDS = {
    'detection': ('mmdet', ['dets', 'labels']),
    'instance-seg': ('mmdet', ['dets', 'labels', 'masks']),
    'classification': ('mmpretrain', ['output']),
    'segmentation': ('mmseg', ['output']),
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
    import importlib.util
    from importlib.metadata import version
    for name in ('mmdeploy', 'onnxruntime'):  # found, not imported yet
        if importlib.util.find_spec(name) is None:
            raise DeployError(f'{name} is not installed: {install}')
    return version('mmdeploy')


def model_kind(cfg) -> str:
    """One of :data:`KINDS` by the config's ``default_scope`` (and, for
    MMDetection, a mask head); a :class:`DeployError` for other configs."""
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        model = cfg.model
        has_mask = model.get('mask_head') is not None or (
            isinstance(model.get('roi_head'), dict)
            and model.roi_head.get('mask_head') is not None)
        return 'instance-seg' if has_mask else 'detection'
    kinds = {codebase: kind for kind, (codebase, _) in KINDS.items()}
    if scope not in kinds:
        raise DeployError(
            f'the config\'s default_scope is {scope!r}; deploy.py takes '
            f'MMDetection, MMPretrain and MMSegmentation configs '
            f'(default_scope \'mmdet\', \'mmpretrain\' or \'mmseg\')')
    return kinds[scope]


def check_deploy_config(deploy_cfg, kind: str, path: str) -> None:
    """A :class:`DeployError` unless ``deploy_cfg`` exports a model of
    ``kind`` to ONNX Runtime through ONNX."""
    codebase, want = KINDS[kind]
    got = deploy_cfg.get('codebase_config', {}).get('type')
    backend = deploy_cfg.get('backend_config', {}).get('type')
    outputs = list(deploy_cfg.get('onnx_config', {}).get('output_names', []))
    fix = f'use configs/deploy/{kind}_onnxruntime_dynamic.py'
    if got != codebase or backend != 'onnxruntime':
        raise DeployError(
            f'{path} deploys codebase {got!r} to backend {backend!r}; this '
            f'{kind} model needs codebase {codebase!r} to \'onnxruntime\': '
            f'{fix}')
    if outputs != want:
        raise DeployError(f'{path} names the outputs {outputs}, but this '
                          f'{kind} model gives {want}: {fix}')


@contextlib.contextmanager
def _quiet_export():
    """The tracer's notes on the libraries' Python control flow (the graph
    is checked afterwards, not trusted on them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Exporting aten::index',
                                category=UserWarning)
        yield


def export(model_cfg, deploy_cfg, checkpoint: Optional[str], img,
           work_dir: str) -> Dict:
    """MMDeploy's ``torch2onnx`` and ``export2SDK`` into ``work_dir``, by
    way of ``work_dir/.partial`` (a failed export leaves no
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
    from mmdeploy.apis import torch2onnx
    from mmdeploy.backend.sdk.export_info import export2SDK
    partial = osp.join(work_dir, '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:  # copies: export2SDK rewrites the test pipeline in place
        with _quiet_export(), mmdeploy_export_shims() as shims:
            torch2onnx(img, partial, ONNX_FILE, copy.deepcopy(deploy_cfg),
                       copy.deepcopy(model_cfg), checkpoint, 'cpu')
        export2SDK(copy.deepcopy(deploy_cfg), copy.deepcopy(model_cfg),
                   partial, pth=checkpoint or '', device='cpu')
        for name in SDK_FILES + (ONNX_FILE, ):
            os.replace(osp.join(partial, name), osp.join(work_dir, name))
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dict(onnx=osp.join(work_dir, ONNX_FILE), shims=shims,
                **graph_ops(osp.join(work_dir, ONNX_FILE)))


def graph_ops(path: str) -> Dict:
    """``op_types`` and ``domains`` (``''``: standard ONNX) of a graph."""
    import onnx
    nodes = onnx.load(path).graph.node
    return dict(op_types=sorted({n.op_type for n in nodes}),
                domains=sorted({n.domain for n in nodes}))


class _Features(torch.nn.Module):
    """A model's ``extract_feat`` (backbone and neck) as a flat tuple."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, img):
        out, flat = self.model.extract_feat(img), []
        while out:
            head, out = out[0], list(out[1:])
            if isinstance(head, torch.Tensor):
                flat.append(head)
            else:
                out = list(head) + out
        return tuple(flat)


def export_features(model, inputs: torch.Tensor, deploy_cfg,
                    path: str) -> Dict:
    """The model's backbone and neck (``extract_feat``: a detector's FPN
    levels) to ONNX with MMDeploy's ``export``, dynamic batch, height and
    width; ONNX Runtime checked against PyTorch on ``inputs`` and on two
    resized copies of them (batch 2, other aspect ratios).

    Returns:
        dict: ``onnx``, ``shims``, ``op_types``, ``domains`` and
        ``checks`` (``shape`` and ``max_rel_error``: the largest
        ``|ORT - PyTorch| / max|PyTorch|`` over the outputs, per input).
    """
    import onnxruntime as ort
    from mmdeploy.apis.onnx import export as mmdeploy_export
    module = _Features(model).eval()
    with torch.no_grad():
        names = [f'out{i}' for i in range(len(module(inputs)))]
    axes = {n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names}
    axes['input'] = {0: 'batch', 2: 'height', 3: 'width'}
    tmp = path[:-len('.onnx')] + '.part'
    with _quiet_export(), mmdeploy_export_shims() as shims:
        mmdeploy_export(module, inputs, tmp, 'onnxruntime',
                        context_info=dict(deploy_cfg=deploy_cfg),
                        input_names=['input'], output_names=names,
                        opset_version=deploy_cfg.onnx_config.opset_version,
                        dynamic_axes=axes)
    os.replace(tmp + '.onnx', path)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    h, w = inputs.shape[-2:]
    checks = []
    for size in (None, (h * 3 // 4, w // 2), (h * 5 // 4, w * 5 // 4 + 7)):
        x = inputs if size is None else torch.nn.functional.interpolate(
            inputs, size=size, mode='bilinear').repeat(2, 1, 1, 1)
        with torch.no_grad():
            ref = [t.numpy() for t in module(x)]
        got = session.run(None, {'input': x.numpy()})
        err = max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-12))
                  for g, r in zip(got, ref))
        checks.append(dict(shape=list(x.shape), max_rel_error=err))
    return dict(onnx=path, shims=shims, checks=checks, **graph_ops(path))


def build_backend(model_cfg, deploy_cfg, onnx_file: str):
    """MMDeploy's task processor and its ONNX Runtime model of
    ``onnx_file`` (``End2EndModel``: the config's data preprocessor, the
    graph in an ``InferenceSession``, the codebase's post-processing)."""
    from mmdeploy.apis import build_task_processor
    task = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = task.build_backend_model([onnx_file],
                                     task.update_data_preprocessor)
    return task, model


def predict(task, model, img):
    """``model``'s data sample for one image (path or array), prepared by
    MMDeploy's test pipeline (``create_input``); ``model`` is the backend
    model or the PyTorch one. Masks are pasted per box."""
    data, _ = task.create_input(img, None)
    with torch.no_grad(), masks_pasted_per_box():
        return model.test_step(data)[0]


def compare(kind: str, reference, candidate) -> Dict:
    """How ``candidate``'s prediction (ONNX Runtime's data sample) differs
    from ``reference``'s (PyTorch's): :func:`match_detections` for
    detectors; ``max_score_diff`` and ``same_top1`` for classifiers;
    ``pixels`` and ``equal_labels`` (the fraction of pixels of the same
    label) for segmentors."""
    if kind == 'classification':
        ref, got = reference.pred_score, candidate.pred_score
        return dict(max_score_diff=float((ref - got).abs().max()),
                    same_top1=bool(ref.argmax() == got.argmax()))
    if kind == 'segmentation':
        ref = reference.pred_sem_seg.data
        got = candidate.pred_sem_seg.data.to(ref.dtype)
        return dict(pixels=ref.numel(),
                    equal_labels=float((ref == got).float().mean()))
    ref, got = reference.pred_instances, candidate.pred_instances
    report = match_detections(ref, got)
    report.update(onnx_detections=len(got), pytorch_detections=len(ref))
    return report


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
    ref = reference[reference.scores >= score_thr]
    ref = ref[ref.scores.argsort(descending=True)]
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


def evaluate(cfg, checkpoint: str, task, backend, work_dir: str) -> Dict:
    """The config's test evaluator on its test set, for ONNX Runtime
    (MMDeploy's test runner) and PyTorch (mmengine's runner, as
    ``tools/test.py`` builds it), in ``work_dir/eval_{onnxruntime,
    pytorch}``: ``{'onnxruntime': metrics, 'pytorch': metrics}``."""
    from mmfca.utils import build_runner, trusted_checkpoint
    with masks_pasted_per_box():
        onnx = task.build_test_runner(
            backend, osp.join(work_dir, 'eval_onnxruntime')).test()
    cfg = cfg.copy()
    cfg.load_from = trusted_checkpoint(checkpoint, cfg.get('work_dir'))
    cfg.work_dir = osp.join(work_dir, 'eval_pytorch')
    # a visualizer of its own (the config's is a process-wide instance)
    cfg.visualizer.name = f'mmfca-deploy-pytorch@{work_dir}'
    return dict(onnxruntime=onnx, pytorch=build_runner(cfg).test())


#: The metrics shown side by side, as the evaluators name them.
SHOWN = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
         'coco/segm_mAP_50', 'accuracy/top1', 'accuracy/top5', 'mIoU',
         'aAcc')


def metrics_lines(onnx: Dict, pytorch: Dict) -> List[str]:
    """The :data:`SHOWN` metrics of both, side by side."""
    return [f'{key.split("/")[-1]:<12} ONNX Runtime {onnx[key]:.3f}   '
            f'PyTorch {pytorch[key]:.3f}   difference '
            f'{onnx[key] - pytorch[key]:+.3f}' for key in SHOWN
            if key in onnx and key in pytorch]
