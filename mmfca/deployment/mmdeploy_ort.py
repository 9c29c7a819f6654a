# Copyright (c) mmfca contributors. All rights reserved.
"""A detector, classifier or segmentor to ONNX Runtime with MMDeploy's
apis (``tools/deployment/deploy.py``); mmfca adds the checks before the
export, the comparison with PyTorch, the backbone + neck export and
MMDetection's mask pasting (:mod:`.mask_paste`)."""
import contextlib
import copy
import os
import os.path as osp
import shutil
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .mask_paste import masks_pasted_per_box
from .mmdeploy_shims import mmdeploy_export_shims

#: The MMDeploy release the deploy configs and the shims are written for.
MMDEPLOY_VERSION = '1.3.1'
ONNX_FILE = 'end2end.onnx'  # and MMDeploy's SDK files beside it:
SDK_FILES = ('deploy.json', 'pipeline.json', 'detail.json')
#: By the model: MMDeploy codebase and graph outputs (deploy config:
#: configs/deploy/<kind>_onnxruntime_dynamic.py).
KINDS = {
    'detection': ('mmdet', ['dets', 'labels']),
    'instance-seg': ('mmdet', ['dets', 'labels', 'masks']),
    'classification': ('mmpretrain', ['output']),
    'segmentation': ('mmseg', ['output']),
}
#: Detections compared: score >= SCORE_THR; twins: same label, IoU > IOU_THR
SCORE_THR, IOU_THR = 0.3, 0.9
SHOWN = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
         'coco/segm_mAP_50', 'accuracy/top1', 'accuracy/top5', 'mIoU',
         'aAcc')


class DeployError(RuntimeError):
    """Deployment cannot proceed; the message (one line) says why."""


def require_mmdeploy() -> None:
    """How to install mmdeploy or onnxruntime, if missing (not imported)."""
    import importlib.util
    for name in ('mmdeploy', 'onnxruntime'):
        if importlib.util.find_spec(name) is None:
            raise DeployError(
                f'{name} is not installed: `make install` sets up mmdeploy '
                f'{MMDEPLOY_VERSION}; elsewhere: pip install --no-deps '
                f'mmdeploy=={MMDEPLOY_VERSION} && pip install aenum onnx '
                f'onnxruntime (its declared dependencies would downgrade '
                f'onnx and protobuf)')


def model_kind(cfg) -> str:
    """One of :data:`KINDS` by ``default_scope`` (and a mask head)."""
    scope, model = cfg.get('default_scope'), cfg.get('model', {})
    if scope == 'mmdet':
        roi_head = model.get('roi_head')
        has_mask = model.get('mask_head') is not None or (
            isinstance(roi_head, dict) and roi_head.get('mask_head'))
        return 'instance-seg' if has_mask else 'detection'
    kinds = dict(mmpretrain='classification', mmseg='segmentation')
    if scope not in kinds:
        raise DeployError(
            f'the config\'s default_scope is {scope!r}; deploy.py takes '
            f'MMDetection, MMPretrain and MMSegmentation configs '
            f'(default_scope \'mmdet\', \'mmpretrain\' or \'mmseg\')')
    return kinds[scope]


def check_deploy_config(deploy_cfg, kind: str, path: str) -> None:
    """Refuse a ``deploy_cfg`` not exporting ``kind`` to ONNX Runtime."""
    (codebase, want), fix = KINDS[kind], (
        f'use configs/deploy/{kind}_onnxruntime_dynamic.py')
    got = deploy_cfg.get('codebase_config', {}).get('type')
    backend = deploy_cfg.get('backend_config', {}).get('type')
    outputs = list(deploy_cfg.get('onnx_config', {}).get('output_names', []))
    if got != codebase or backend != 'onnxruntime':
        raise DeployError(
            f'{path} deploys codebase {got!r} to backend {backend!r}; this '
            f'{kind} model needs codebase {codebase!r} to \'onnxruntime\': '
            f'{fix}')
    if outputs != want:
        raise DeployError(f'{path} names the outputs {outputs}, but this '
                          f'{kind} model gives {want}: {fix}')


@contextlib.contextmanager
def _exporting():
    """The torch shims (yielded), the tracer's notes silenced."""
    with warnings.catch_warnings(), mmdeploy_export_shims() as shims:
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Exporting aten::index')
        yield shims


def graph_ops(path: str) -> Dict:
    """A graph's ``op_types`` and ``domains`` (``''``: standard ONNX)."""
    import onnx
    nodes = onnx.load(path).graph.node
    return dict(op_types=sorted({n.op_type for n in nodes}),
                domains=sorted({n.domain for n in nodes}))


def export(model_cfg, deploy_cfg, checkpoint: Optional[str], img,
           work_dir: str) -> Dict:
    """MMDeploy's ``torch2onnx`` and ``export2SDK`` traced on ``img``, into
    ``work_dir`` via ``.partial`` (a failed export leaves no graph): the
    ``onnx`` path, ``shims`` and :func:`graph_ops`."""
    from mmdeploy.apis import torch2onnx
    from mmdeploy.backend.sdk.export_info import export2SDK
    partial = osp.join(work_dir, '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:  # copies: export2SDK rewrites the test pipeline in place
        with _exporting() as shims:
            torch2onnx(img, partial, ONNX_FILE, copy.deepcopy(deploy_cfg),
                       copy.deepcopy(model_cfg), checkpoint, 'cpu')
        export2SDK(copy.deepcopy(deploy_cfg), copy.deepcopy(model_cfg),
                   partial, pth=checkpoint or '', device='cpu')
        for name in SDK_FILES + (ONNX_FILE, ):
            os.replace(osp.join(partial, name), osp.join(work_dir, name))
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    path = osp.join(work_dir, ONNX_FILE)
    return dict(onnx=path, shims=shims, **graph_ops(path))


class _Features(torch.nn.Module):
    """``extract_feat`` (backbone and neck) as a tuple."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, img):
        out = self.model.extract_feat(img)
        return (out, ) if isinstance(out, torch.Tensor) else tuple(out)


def export_features(model, inputs: torch.Tensor, deploy_cfg,
                    path: str) -> Dict:
    """``model``'s backbone and neck to ``path`` (MMDeploy's ``export``,
    dynamic shapes), checked on ``inputs`` and two resized copies (batch
    2): ``onnx``, ``shims``, :func:`graph_ops`, ``checks`` (``shape``,
    ``max_rel_error`` = max|ORT - PyTorch| / max|PyTorch|)."""
    import onnxruntime as ort
    from mmdeploy.apis.onnx import export as mmdeploy_export
    module = _Features(model).eval()
    with torch.no_grad():
        names = [f'out{i}' for i in range(len(module(inputs)))]
    axes = {n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names}
    axes['input'] = {0: 'batch', 2: 'height', 3: 'width'}
    with _exporting() as shims:
        mmdeploy_export(
            module, inputs, path[:-5] + '.partial', 'onnxruntime',
            context_info=dict(deploy_cfg=deploy_cfg), input_names=['input'],
            output_names=names, dynamic_axes=axes,
            opset_version=deploy_cfg.onnx_config.opset_version)
    os.replace(path[:-5] + '.partial.onnx', path)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (h, w), checks = inputs.shape[-2:], []
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
    """MMDeploy's task processor and its ONNX Runtime ``End2EndModel``."""
    from mmdeploy.apis import build_task_processor
    task = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    return task, task.build_backend_model([onnx_file],
                                          task.update_data_preprocessor)


def predict(task, model, img):
    """``model``'s data sample for ``img`` as MMDeploy prepares it."""
    data, _ = task.create_input(img, None)
    with torch.no_grad(), masks_pasted_per_box():
        return model.test_step(data)[0]


def compare(kind: str, reference, candidate) -> Tuple[Dict, str]:
    """How ONNX Runtime's data sample differs from PyTorch's, and a line
    saying so: :func:`match_detections`, classifier scores, pixel labels.
    """
    if kind == 'classification':
        ref, got = reference.pred_score, candidate.pred_score
        c = dict(max_score_diff=float((ref - got).abs().max()),
                 same_top1=bool(ref.argmax() == got.argmax()))
        return c, (f'largest score difference {c["max_score_diff"]:.1e}, '
                   f'top-1 {"the same" if c["same_top1"] else "differs"}')
    if kind == 'segmentation':
        ref = reference.pred_sem_seg.data
        got = candidate.pred_sem_seg.data.to(ref.dtype)
        c = dict(pixels=ref.numel(),
                 equal_labels=float((ref == got).double().mean()))
        return c, f'{100 * c["equal_labels"]:.2f} % of the pixel labels equal'
    ref, got = reference.pred_instances, candidate.pred_instances
    c = dict(match_detections(ref, got), onnx_detections=len(got),
             pytorch_detections=len(ref))
    text = (f'{c["matched"]} of {c["compared"]} detections with score >= '
            f'{SCORE_THR} matched (same label, box IoU > {IOU_THR})')
    if c['matched']:
        text += (f'; largest differences: box {c["max_box_diff"]:.2e} px, '
                 f'score {c["max_score_diff"]:.2e}')
    if c.get('min_mask_iou') is not None:
        text += f', smallest mask IoU {c["min_mask_iou"]:.4f}'
    return c, text + (f'; detections of ONNX Runtime / PyTorch: '
                      f'{len(got)} / {len(ref)}')


def match_detections(reference, candidate, score_thr: float = SCORE_THR,
                     iou_thr: float = IOU_THR) -> Dict:
    """Pair each ``reference`` detection scoring >= ``score_thr``, by score,
    with the unused ``candidate`` one of its label overlapping it most, if
    IoU > ``iou_thr``: ``compared``, ``matched``, and over the pairs
    ``min_iou``, ``max_box_diff`` (px), ``max_score_diff``, with masks
    ``min_mask_iou`` (None without pairs)."""
    from mmdet.structures.bbox import bbox_overlaps
    ref = reference[reference.scores >= score_thr]
    ref = ref[ref.scores.argsort(descending=True)]
    ious = bbox_overlaps(ref.bboxes.float(), candidate.bboxes.float())
    same = ref.labels[:, None] == candidate.labels[None, :]
    ious = torch.where(same, ious, ious.new_full((), -1.))
    pairs = []
    for i in range(len(ref) if ious.shape[1] else 0):
        j = int(ious[i].argmax())
        if ious[i, j] > iou_thr:
            pairs.append((i, j))
            ious[:, j] = -1
    has_masks = 'masks' in ref and 'masks' in candidate
    report = dict(compared=len(ref), matched=len(pairs), **dict.fromkeys(
        ['min_iou', 'max_box_diff', 'max_score_diff'] +
        ['min_mask_iou'] * has_masks))
    if not pairs:
        return report
    i, j = (torch.tensor(idx) for idx in zip(*pairs))
    a, b = ref[i], candidate[j]
    report.update(
        min_iou=float(bbox_overlaps(a.bboxes.float(), b.bboxes.float(),
                                    is_aligned=True).min()),
        max_box_diff=float((a.bboxes - b.bboxes).abs().max()),
        max_score_diff=float((a.scores - b.scores).abs().max()))
    if has_masks:
        inter = (a.masks & b.masks).flatten(1).sum(1).float()
        union = (a.masks | b.masks).flatten(1).sum(1).float()
        report['min_mask_iou'] = float(torch.where(  # two empty: the same
            union > 0, inter / union.clamp(min=1), 1.).min())
    return report


def evaluate(cfg, checkpoint: str, task, backend, work_dir: str) -> Dict:
    """The config's test set evaluated for ONNX Runtime (MMDeploy's test
    runner) and PyTorch (as tools/test.py), in ``work_dir/eval_<name>``."""
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


def metrics_lines(onnx: Dict, pytorch: Dict) -> List[str]:
    """The :data:`SHOWN` metrics side by side."""
    return [f'{key.split("/")[-1]:<12} ONNX Runtime {onnx[key]:.3f}   '
            f'PyTorch {pytorch[key]:.3f}   difference '
            f'{onnx[key] - pytorch[key]:+.3f}' for key in SHOWN
            if key in onnx and key in pytorch]
