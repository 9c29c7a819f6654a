# Copyright (c) mmfca contributors. All rights reserved.
"""A detector, classifier or segmentor to ONNX Runtime with MMDeploy's
apis (``tools/deployment/deploy.py``): mmfca's checks before the export,
the backbone + neck export, and the comparison with PyTorch."""
import contextlib
import copy
import importlib.util
import os
import os.path as osp
import tempfile
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .mask_paste import masks_pasted_per_box
from .mmdeploy_shims import mmdeploy_export_shims

#: The MMDeploy release the deploy configs and the shims are written for.
MMDEPLOY_VERSION = '1.3.1'
ONNX_FILE, FEATURES_FILE = 'end2end.onnx', 'features.onnx'
SDK_FILES = ('deploy.json', 'pipeline.json', 'detail.json')  # MMDeploy's
#: By the model: MMDeploy codebase (the config's default_scope) and graph
#: outputs (deploy config: configs/deploy/<kind>_onnxruntime_dynamic.py).
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
        roi_head = model.get('roi_head') or {}
        masks = model.get('mask_head') or roi_head.get('mask_head')
        return 'instance-seg' if masks else 'detection'
    for kind, (codebase, _) in KINDS.items():
        if codebase == scope:
            return kind
    raise DeployError(
        f'the config\'s default_scope is {scope!r}; deploy.py takes '
        f'MMDetection, MMPretrain and MMSegmentation configs '
        f'(default_scope \'mmdet\', \'mmpretrain\' or \'mmseg\')')


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
def _exporting(work_dir: str, *names: str):
    """A scratch folder and the torch shims (yielded); its ``names`` move
    into ``work_dir`` if the block succeeds."""
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch, \
            warnings.catch_warnings(), mmdeploy_export_shims() as shims:
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Exporting aten::index')
        yield scratch, shims
        for name in names:
            os.replace(osp.join(scratch, name), osp.join(work_dir, name))


def _exported(path: str, **info) -> Dict:
    """``info`` and the graph's ``onnx``, ``op_types``, ``domains``."""
    import onnx
    nodes = onnx.load(path).graph.node
    return dict(info, onnx=path, op_types=sorted({n.op_type for n in nodes}),
                domains=sorted({n.domain for n in nodes}))


def export(model, task, img, work_dir: str,
           checkpoint: Optional[str] = None) -> Dict:
    """MMDeploy's ``export2SDK`` (naming ``checkpoint``) and ``export`` of
    the built ``model``, traced on ``img`` as its ``torch2onnx`` does
    (which would build and load a model of its own), into ``work_dir``:
    :func:`_exported` with the ``shims`` applied."""
    from mmdeploy.apis.onnx import export as mmdeploy_export
    from mmdeploy.backend.sdk.export_info import export2SDK
    from mmdeploy.utils import get_dynamic_axes, get_input_shape
    deploy_cfg, onnx_cfg = task.deploy_cfg, task.deploy_cfg.onnx_config
    names = onnx_cfg.input_names + onnx_cfg.output_names
    with _exporting(work_dir, ONNX_FILE, *SDK_FILES) as (scratch, shims):
        # copies, before create_input: both rewrite the test pipeline
        export2SDK(copy.deepcopy(deploy_cfg), copy.deepcopy(task.model_cfg),
                   scratch, pth=checkpoint or '', device='cpu')
        data, inputs = task.create_input(img, get_input_shape(deploy_cfg),
                                         model.data_preprocessor)
        try:
            mmdeploy_export(
                model, inputs, osp.join(scratch, osp.splitext(ONNX_FILE)[0]),
                'onnxruntime', context_info=dict(deploy_cfg=deploy_cfg),
                input_metas=dict(data_samples=data['data_samples'],
                                 mode='predict'),
                opset_version=onnx_cfg.opset_version,
                dynamic_axes=get_dynamic_axes(deploy_cfg, names),
                keep_initializers_as_inputs=onnx_cfg.get(
                    'keep_initializers_as_inputs', True),
                optimize=onnx_cfg.get('optimize', False),
                input_names=onnx_cfg.input_names,
                output_names=onnx_cfg.output_names)
        finally:  # MMDeploy's export leaves its rewritten forward on it
            vars(model).pop('forward', None)
    return _exported(osp.join(work_dir, ONNX_FILE), shims=shims)


class _Features(torch.nn.Module):
    """``extract_feat`` (backbone and neck) as a tuple."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, img):
        out = self.model.extract_feat(img)
        return (out, ) if isinstance(out, torch.Tensor) else tuple(out)


def export_features(model, task, img, work_dir: str) -> Dict:
    """``model``'s backbone and neck by MMDeploy's ``export``, checked on
    ``img`` and two resized copies (batch 2): ``checks`` (``shape``,
    ``max_rel_error`` = max|ORT - PyTorch| / max|PyTorch|)."""
    import onnxruntime as ort
    from mmdeploy.apis.onnx import export as mmdeploy_export
    module = _Features(model).eval()
    inputs = model.data_preprocessor(task.create_input(img, None)[0],
                                     False)['inputs']
    with torch.no_grad():
        names = [f'out{i}' for i in range(len(module(inputs)))]
    axes = {n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names}
    axes['input'] = {0: 'batch', 2: 'height', 3: 'width'}
    with _exporting(work_dir, FEATURES_FILE) as (scratch, shims):
        mmdeploy_export(
            module, inputs, osp.join(scratch, 'features'), 'onnxruntime',
            context_info=dict(deploy_cfg=task.deploy_cfg),
            input_names=['input'], output_names=names, dynamic_axes=axes,
            opset_version=task.deploy_cfg.onnx_config.opset_version)
    path = osp.join(work_dir, FEATURES_FILE)
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
    return _exported(path, shims=shims, checks=checks)


def export_lines(exported: Dict) -> List[str]:
    """What :func:`export` or :func:`export_features` did, for a summary."""
    ops = ('standard ONNX only' if exported['domains'] == [''] else
           f'domains {exported["domains"]}')
    sdk = '' if 'checks' in exported else (
        f' and {", ".join(SDK_FILES)} beside it')
    return [f'wrote {exported["onnx"]}{sdk}; operators: {ops} '
            f'({len(exported["op_types"])} types); torch shims: '
            f'{", ".join(exported["shims"]) or "none"}'] + [
                f'ONNX Runtime vs PyTorch at input {c["shape"]}: largest '
                f'relative difference {c["max_rel_error"]:.1e}'
                for c in exported.get('checks', [])]


def compare(kind: str, task, pytorch, backend, img) -> Tuple[Dict, str]:
    """How the ONNX Runtime ``backend``'s data sample for ``img`` differs
    from PyTorch's, and a line saying so."""
    data, _ = task.create_input(img, None)
    with torch.no_grad(), masks_pasted_per_box():
        reference, candidate = (model.test_step(data)[0]
                                for model in (pytorch, backend))
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
    """Each ``reference`` detection scoring >= ``score_thr`` (by score)
    paired with the free ``candidate`` one of its label overlapping it
    most, if IoU > ``iou_thr``: counts, and the pairs' ``min_iou``,
    ``max_box_diff`` (px), ``max_score_diff``, ``min_mask_iou``."""
    from mmdet.structures.bbox import bbox_overlaps
    ref = reference[reference.scores >= score_thr]
    ref = ref[ref.scores.argsort(descending=True)]
    ious = bbox_overlaps(ref.bboxes.float(), candidate.bboxes.float())
    ious[ref.labels[:, None] != candidate.labels[None, :]] = -1
    pairs = []  # (IoU, reference index, candidate index)
    for i in range(len(ref) if ious.shape[1] else 0):
        iou, j = ious[i].max(0)
        if iou > iou_thr:
            pairs.append((float(iou), i, int(j)))
            ious[:, j] = -1
    has_masks = 'masks' in ref and 'masks' in candidate
    report = dict(compared=len(ref), matched=len(pairs), **dict.fromkeys(
        ['min_iou', 'max_box_diff', 'max_score_diff'] +
        ['min_mask_iou'] * has_masks))  # None without pairs
    if not pairs:
        return report
    iou, i, j = zip(*pairs)
    a, b = ref[torch.tensor(i)], candidate[torch.tensor(j)]
    report.update(min_iou=min(iou),
                  max_box_diff=float((a.bboxes - b.bboxes).abs().max()),
                  max_score_diff=float((a.scores - b.scores).abs().max()))
    if has_masks:
        inter = (a.masks & b.masks).flatten(1).sum(1).float()
        union = (a.masks | b.masks).flatten(1).sum(1).float()
        report['min_mask_iou'] = float(torch.where(  # two empty: the same
            union > 0, inter / union.clamp(min=1), 1.).min())
    return report


def evaluate(task, models: Dict, work_dir: str) -> Dict:
    """The test set's metrics of each of ``models`` (by name: MMDeploy's
    backend model, the PyTorch model) by MMDeploy's test runner, in
    ``work_dir/eval_<name>``."""
    with masks_pasted_per_box():
        return {name: task.build_test_runner(
            model, osp.join(work_dir, f'eval_{name}')).test()
            for name, model in models.items()}


def metrics_lines(onnx: Dict, pytorch: Dict) -> List[str]:
    """The :data:`SHOWN` metrics side by side."""
    return [f'{key.split("/")[-1]:<12} ONNX Runtime {onnx[key]:.3f}   '
            f'PyTorch {pytorch[key]:.3f}   difference '
            f'{onnx[key] - pytorch[key]:+.3f}' for key in SHOWN
            if key in onnx and key in pytorch]
