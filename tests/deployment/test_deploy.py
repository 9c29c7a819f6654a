"""tools/deployment/deploy.py: a whole Mask R-CNN FcaNet through MMDeploy
to ONNX Runtime (the classifier and the segmentor: test_deploy_cls_seg.py).
The graph holds standard ONNX operators only, runs in a plain onnxruntime
session, and ONNX Runtime's detections are MMDetection's
own (its inference_detector on the checkpoint, not MMDeploy's rewritten
model); --eval prints the ONNX model's COCO mAP beside PyTorch's. Errors
are one line each and name the bad value."""
import importlib.util
import json
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from _helpers import DEMO_CONFIG, REPO, data_options, load_tool, run, tool

# found, not imported: deploy.py imports MMDeploy (which makes its logger)
# while its output goes to the log
pytestmark = pytest.mark.skipif(
    None in (importlib.util.find_spec('onnxruntime'),
             importlib.util.find_spec('mmdeploy')),
    reason='mmdeploy 1.3.1 is installed by tools/setup_env.sh (pip install '
    '--no-deps), onnxruntime with the tests extra')
deploy = load_tool('deployment/deploy.py')
from mmfca.apis import init_model  # noqa: E402
from mmfca.deployment import mmdeploy_ort  # noqa: E402

#: The tiny Mask R-CNN FcaNet-18 the slow tests deploy: the demo config
#: (MatmulRoIExtractor, 3 classes, 128 px) trained for 24 iterations on the
#: 8 synthetic training images, the warm-up shortened so that it detects
#: shapes with scores above 0.3.
EPOCHS = 12
TINY_CONFIG = f"""_base_ = {DEMO_CONFIG!r}
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(type='CosineAnnealingLR', begin=0, end={EPOCHS}, by_epoch=True,
         eta_min_ratio=0.1)]
train_cfg = dict(max_epochs={EPOCHS}, val_interval={EPOCHS})
default_hooks = dict(checkpoint=dict(interval={EPOCHS}))
"""


def eval_data_options(root):
    """--cfg-options pointing the demo config's test set at ``root``."""
    root = root.rstrip('/') + '/'
    return [f'test_dataloader.dataset.data_root={root}',
            f'test_evaluator.ann_file={root}annotations/'
            'instances_val2017.json']


@pytest.fixture(scope='module')
def deployed(synthetic_coco, module_tmp_path):
    """The tiny detector trained with tools/train.py, then deployed with
    --eval: the run's files and console."""
    config = module_tmp_path / 'mask-rcnn_fca18_tiny.py'
    config.write_text(TINY_CONFIG)
    train_dir = str(module_tmp_path / 'train')
    proc = run(tool('train.py') + [str(config), '--work-dir', train_dir,
                                   '--cfg-options'] +
               data_options(synthetic_coco) +
               [f'train_cfg.val_interval={EPOCHS}'])  # at the end only
    val, = [line for line in proc.stdout.splitlines()
            if 'Epoch(val)' in line and 'coco/' in line]
    work_dir = str(module_tmp_path / 'deploy')
    ckpt = osp.join(train_dir, f'epoch_{EPOCHS}.pth')
    proc = run(tool('deployment/deploy.py') + [
        str(config), ckpt, '--work-dir', work_dir, '--eval',
        '--cfg-options'] + eval_data_options(synthetic_coco))
    with open(osp.join(work_dir, 'deploy_check.json')) as f:
        report = json.load(f)
    return dict(config=str(config), ckpt=ckpt, work_dir=work_dir,
                out=proc.stdout, report=report, data=synthetic_coco,
                val_metrics={k: float(v) for k, v in
                             re.findall(r'coco/(\w+): (-?[\d.]+)', val)})


@pytest.mark.slow
def test_deploy_writes_the_graph_and_mmdeploys_files(deployed):
    work_dir = deployed['work_dir']
    for name in ('end2end.onnx', 'deploy.json', 'pipeline.json',
                 'detail.json', 'deploy_check.json', 'deploy.log'):
        assert osp.isfile(osp.join(work_dir, name)), name
    assert not osp.exists(osp.join(work_dir, '.partial'))
    with open(osp.join(work_dir, 'deploy.json')) as f:
        sdk = json.load(f)
    assert sdk['models'][0]['net'] == 'end2end.onnx'
    assert sdk['models'][0]['backend'] == 'onnxruntime'
    with open(osp.join(work_dir, 'detail.json')) as f:
        detail = json.load(f)
    assert detail['onnx_config']['opset_version'] == 16
    assert detail['codebase_config']['post_processing'][
        'score_threshold'] == 0.0
    # the console: progress and the summary, the libraries' output in the
    # log file
    out = deployed['out']
    assert out.startswith('[deploy] instance-seg model to ONNX Runtime')
    assert 'Failed to search registry' not in out
    assert 'Failed to search registry' in open(
        osp.join(work_dir, 'deploy.log')).read()
    assert 'operators: standard ONNX only' in out
    assert '[deploy] evaluating ONNX Runtime and PyTorch' in out


@pytest.mark.slow
def test_graph_holds_standard_onnx_operators_only(deployed):
    import onnx
    model = onnx.load(osp.join(deployed['work_dir'], 'end2end.onnx'))
    onnx.checker.check_model(model)
    assert {n.domain for n in model.graph.node} == {''}
    assert [(o.domain, o.version) for o in model.opset_import] == [('', 16)]
    ops = {n.op_type for n in model.graph.node}
    assert {'RoiAlign', 'NonMaxSuppression'} <= ops
    # the FCA layers are standard nodes too: nothing names mmcv or mmdeploy
    assert not any('mmcv' in op.lower() or 'mmdeploy' in op.lower()
                   for op in ops)
    # dynamic batch, height and width; dets, labels, masks per detection
    dims = [d.dim_param or d.dim_value for d in
            model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ['batch', 3, 'height', 'width']
    assert [o.name for o in model.graph.output] == ['dets', 'labels', 'masks']


def boxes_matched(ref, got, score_thr=0.3, iou_thr=0.9):
    """Of ``ref``'s detections scoring >= score_thr, those with a detection
    of ``got`` of the same label at box IoU > iou_thr (each used once):
    ``(compared, [(ref index, got index), ...])``."""
    from torchvision.ops import box_iou
    compared = [int(i) for i in torch.nonzero(ref.scores >= score_thr)]
    compared.sort(key=lambda i: -float(ref.scores[i]))
    free, pairs = set(range(len(got))), []
    ious = box_iou(ref.bboxes, got.bboxes) if len(got) else None
    for i in compared:
        best = max((float(ious[i, j]), j) for j in free
                   if got.labels[j] == ref.labels[i]) if free else (0, -1)
        if best[0] > iou_thr:
            pairs.append((i, best[1]))
            free.discard(best[1])
    return len(compared), pairs


@pytest.mark.slow
def test_onnx_runtime_detections_are_mmdetections(deployed):
    """Every val image: MMDeploy's ONNX Runtime model (its own API,
    inference_model) against MMDetection's inference_detector with the
    checkpoint; at least 95 % of the detections scoring >= 0.3 (either
    side's) have a twin of the same label at box IoU > 0.9, and their
    masks agree."""
    import glob

    from mmdeploy.apis import inference_model
    from mmengine.config import Config

    from mmdet.apis import inference_detector, init_detector
    cfg = Config.fromfile(deployed['config'])
    cfg.merge_from_dict(dict(
        o.split('=', 1) for o in eval_data_options(deployed['data'])))
    deploy_cfg = osp.join(REPO, 'configs/deploy/'
                          'instance-seg_onnxruntime_dynamic.py')
    # our own file: fully unpickled
    state = torch.load(deployed['ckpt'], map_location='cpu',
                       weights_only=False)['state_dict']
    detector = init_detector(cfg, device='cpu')
    detector.load_state_dict(state, strict=True)
    images = sorted(glob.glob(osp.join(deployed['data'], 'val2017', '*.jpg')))
    totals = dict(ref=0, ref_matched=0, got=0, got_matched=0)
    mask_ious = []
    for img in images:
        ref = inference_detector(detector, img).pred_instances
        got = inference_model(cfg, deploy_cfg, [osp.join(
            deployed['work_dir'], 'end2end.onnx')], img,
                              'cpu')[0].pred_instances
        n, pairs = boxes_matched(ref, got)
        totals['ref'] += n
        totals['ref_matched'] += len(pairs)
        n, back = boxes_matched(got, ref)
        totals['got'] += n
        totals['got_matched'] += len(back)
        for i, j in pairs:
            a, b = ref.masks[i].bool(), got.masks[j].bool()
            mask_ious.append(float((a & b).sum()) / max(float((a | b).sum()),
                                                        1.))
            assert abs(float(ref.scores[i] - got.scores[j])) < 1e-3
    assert totals['ref'] >= 10, totals  # a trained detector, not noise
    assert totals['ref_matched'] >= 0.95 * totals['ref'], totals
    assert totals['got_matched'] >= 0.95 * totals['got'], totals
    assert min(mask_ious) > 0.95, mask_ious


@pytest.mark.slow
def test_graph_runs_without_mmdeploys_custom_op_library(deployed):
    """A plain onnxruntime session (no custom op library registered) gives
    what MMDeploy's backend model (which registers its library) gets."""
    import onnxruntime as ort
    from mmdeploy.apis import build_task_processor
    from mmengine.config import Config
    cfg = Config.fromfile(deployed['config'])
    deploy_cfg = Config.fromfile(osp.join(
        REPO, 'configs/deploy/instance-seg_onnxruntime_dynamic.py'))
    onnx_file = osp.join(deployed['work_dir'], 'end2end.onnx')
    task = build_task_processor(cfg, deploy_cfg, 'cpu')
    backend = task.build_backend_model([onnx_file])
    img = osp.join(deployed['data'], 'val2017', '000000000001.jpg')
    data, _ = task.create_input(img, None)
    inputs = backend.data_preprocessor(data, False)['inputs']
    wrapped = backend.wrapper({'input': inputs})
    plain = ort.InferenceSession(onnx_file, providers=[
        'CPUExecutionProvider']).run(None, {'input': inputs.numpy()})
    for name, array in zip(('dets', 'labels', 'masks'), plain):
        np.testing.assert_allclose(array, wrapped[name].numpy(), rtol=1e-5,
                                   atol=1e-5)
    assert (plain[0][0, :, 4] > 0.3).sum() > 0


@pytest.mark.slow
def test_eval_prints_onnx_beside_pytorch_and_they_agree(deployed):
    report, out = deployed['report'], deployed['out']
    onnx, torch_ = report['eval']['onnxruntime'], report['eval']['pytorch']
    # PyTorch's numbers are the training run's own evaluation
    assert {k: round(v, 3) for k, v in torch_.items()
            if k.startswith('coco/')} == {
                f'coco/{k}': v for k, v in deployed['val_metrics'].items()}
    assert torch_['coco/bbox_mAP'] > 0.05  # a trained detector
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert abs(onnx[key] - torch_[key]) <= 0.01, (key, onnx, torch_)
    line = next(line for line in out.splitlines()
                if line.strip().startswith('bbox_mAP '))
    assert (f'ONNX Runtime {onnx["coco/bbox_mAP"]:.3f}   PyTorch '
            f'{torch_["coco/bbox_mAP"]:.3f}') in line
    assert 'evaluation on the config\'s test set (4 images)' in out
    # the image compared: every detection >= 0.3 matched
    compared = report['compared']
    assert compared['matched'] == compared['compared'] > 0
    assert compared['max_box_diff'] < 1e-2


# ------------------------------------------------------------ fast checks
def test_help_shows_the_whole_description(capsys):
    with pytest.raises(SystemExit):
        deploy.main(['-h'])
    out = ' '.join(capsys.readouterr().out.split())
    assert ('Deploy an MMDetection detector, MMPretrain classifier or '
            'MMSegmentation segmentor (FcaNet backbone) to ONNX Runtime with '
            'MMDeploy') in out
    assert '--part features writes DIR/features.onnx instead' in out
    assert 'An existing DIR/end2end.onnx is kept unless --force.' in out


def saved_weights(path):
    """The demo detector with random weights, as a plain state dict."""
    from mmengine.config import Config
    model = init_model(Config.fromfile(DEMO_CONFIG))
    torch.save({'state_dict': model.state_dict()}, str(path))
    return str(path)


def error_of(argv):
    """The message deploy.py exits with."""
    with pytest.raises(SystemExit) as exc:
        deploy.main(argv)
    return str(exc.value)


def test_bad_inputs_are_refused_with_one_line_each(tmp_path):
    ckpt = saved_weights(tmp_path / 'weights.pth')
    work = str(tmp_path / 'out')
    cls_config = osp.join(REPO, 'configs/fcanet/fcanet18_8xb32_in1k.py')
    other = tmp_path / 'other.py'
    other.write_text("default_scope = 'mmocr'\nmodel = dict(type='DBNet')\n")
    det_deploy = osp.join(REPO, 'configs/deploy/'
                          'detection_onnxruntime_dynamic.py')
    seg_deploy = osp.join(REPO, 'configs/deploy/'
                          'segmentation_onnxruntime_dynamic.py')
    cases = {
        'checkpoint /no/such.pth not found': [DEMO_CONFIG, '/no/such.pth'],
        "default_scope is 'mmocr'; deploy.py takes MMDetection, MMPretrain "
        "and MMSegmentation configs (default_scope 'mmdet', 'mmpretrain' "
        "or 'mmseg')": [str(other), ckpt],
        "names the outputs ['dets', 'labels'], but this instance-seg "
        "model gives ['dets', 'labels', 'masks']: use configs/deploy/"
        "instance-seg_onnxruntime_dynamic.py": [
            DEMO_CONFIG, ckpt, '--deploy-cfg', det_deploy],
        f"{seg_deploy} deploys codebase 'mmseg' to backend 'onnxruntime'; "
        "this classification model needs codebase 'mmpretrain' to "
        "'onnxruntime': use configs/deploy/"
        "classification_onnxruntime_dynamic.py": [
            cls_config, ckpt, '--deploy-cfg', seg_deploy],
        'image /no/such.jpg not found': [
            DEMO_CONFIG, ckpt, '--img', '/no/such.jpg'],
        'Config file /no/such.py does not exist': ['/no/such.py', ckpt],
        "the config's test set cannot be read ([Errno 2] No such file or "
        "directory: '/no/data/annotations/instances_val2017.json'); pass "
        "--img IMAGE": [DEMO_CONFIG, ckpt, '--cfg-options',
                        'test_dataloader.dataset.data_root=/no/data/'],
    }
    for message, argv in cases.items():
        error = error_of(argv + ['--work-dir', work])
        assert message in error, error
        assert error.startswith('deploy.py: error: ') and '\n' not in error
    assert not osp.exists(work)  # nothing written


@pytest.mark.parametrize('part,name', [('model', 'end2end.onnx'),
                                       ('features', 'features.onnx')])
def test_an_existing_graph_is_kept_unless_force(tmp_path, part, name):
    ckpt = saved_weights(tmp_path / 'weights.pth')
    (tmp_path / name).write_bytes(b'keep me')
    error = error_of([DEMO_CONFIG, ckpt, '--work-dir', str(tmp_path),
                      '--part', part])
    assert error == (f'deploy.py: error: {tmp_path}/{name} exists; '
                     f'pass --force to overwrite it or --work-dir for '
                     f'another folder')
    assert (tmp_path / name).read_bytes() == b'keep me'


def test_unreadable_or_foreign_checkpoints_are_one_line(tmp_path):
    img = osp.join(REPO, 'docs/images/dct_basis_top16.png')
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint\n')
    error = error_of([DEMO_CONFIG, str(text), '--img', img, '--work-dir',
                      str(tmp_path / 'a')])
    assert error.startswith(f'deploy.py: error: cannot read checkpoint '
                            f'{text}: ') and '\n' not in error
    # a checkpoint of another model: the demo detector without masks
    state = torch.load(saved_weights(tmp_path / 'weights.pth'),
                       weights_only=True)['state_dict']
    boxes_only = {k: v for k, v in state.items() if 'mask_head' not in k}
    torch.save({'state_dict': boxes_only}, str(tmp_path / 'boxes.pth'))
    error = error_of([DEMO_CONFIG, str(tmp_path / 'boxes.pth'), '--img',
                      img, '--work-dir', str(tmp_path / 'b')])
    assert error.startswith(f'deploy.py: error: checkpoint {tmp_path}/'
                            'boxes.pth does not fit the config\'s model: ')
    assert 'roi_head.mask_head' in error
    assert '\n' not in error and len(error) < 500


def test_a_model_mmdeploy_cannot_export_is_one_line(tmp_path, capsys):
    """Soft-NMS in the R-CNN's test_cfg: MMDeploy has no ONNX form of it
    and raises mid-export. One line on the console, the traceback in the
    log, no graph and no partial files left."""
    from mmengine.registry import DefaultScope
    ckpt = saved_weights(tmp_path / 'weights.pth')
    img = osp.join(REPO, 'docs/images/dct_basis_top16.png')
    work = tmp_path / 'out'

    def current_scope():
        scope = DefaultScope.get_current_instance()
        return scope and (scope.instance_name, scope.scope_name)

    before = current_scope()
    capsys.readouterr()  # the weights' initialisation log
    error = error_of([DEMO_CONFIG, ckpt, '--img', img, '--work-dir',
                      str(work), '--cfg-options',
                      'model.test_cfg.rcnn.nms.type=soft_nms'])
    # MMDeploy's task processor ran: the caller's default scope is back
    assert current_scope() == before
    assert error == (
        f'deploy.py: error: MMDeploy could not export {DEMO_CONFIG} '
        f'(NotImplementedError: Unsupported nms type: soft_nms.); the '
        f'traceback is in {work}/deploy.log')
    log = (work / 'deploy.log').read_text()
    assert 'Traceback' in log and 'mmdeploy/mmcv/ops/nms.py' in log
    assert sorted(p.name for p in work.iterdir()) == ['deploy.log']
    # the console: the steps only (the error line is SystemExit's)
    out = capsys.readouterr()
    assert 'Traceback' not in out.out + out.err
    assert [line[:18] for line in out.out.splitlines()] == [
        '[deploy] instance-', '[deploy] exporting']


def test_bad_opset_names_the_allowed_ones(capsys):
    with pytest.raises(SystemExit) as exc:
        deploy.main([DEMO_CONFIG, 'x.pth', '--work-dir', 'w', '--opset', '9'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert ("argument --opset: invalid choice: 9 (choose from 11, 12, 13, "
            "14, 15, 16, 17)") in err


def test_missing_mmdeploy_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'mmdeploy', None)  # not found
    error = error_of([DEMO_CONFIG, 'x.pth', '--work-dir', str(tmp_path)])
    assert error == (
        'deploy.py: error: mmdeploy is not installed: `make install` sets '
        'up mmdeploy 1.3.1; elsewhere: pip install --no-deps '
        'mmdeploy==1.3.1 && pip install aenum onnx onnxruntime (its '
        'declared dependencies would downgrade onnx and protobuf)')


def test_errors_reach_the_console_as_one_line(tmp_path):
    proc = subprocess.run(
        tool('deployment/deploy.py') + [DEMO_CONFIG, '/no/such.pth',
                                        '--work-dir', str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        'deploy.py: error: checkpoint /no/such.pth not found')
    assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('config,kind', [
    (DEMO_CONFIG, 'instance-seg'),
    ('configs/det/mask-rcnn_fca50_fpn_1x_coco.py', 'instance-seg'),
    ('configs/det/cascade-mask-rcnn_fca50_fpn_1x_coco.py', 'instance-seg'),
    ('configs/det/faster-rcnn_fca50_fpn_1x_coco.py', 'detection'),
    ('configs/det/retinanet_fca50_fpn_1x_coco.py', 'detection'),
    ('configs/fcanet/fcanet50_8xb32_in1k.py', 'classification'),
    ('configs/seg/upernet_fca50_4xb2-80k_cityscapes-512x1024.py',
     'segmentation'),
])
def test_the_deploy_config_follows_the_model(config, kind):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    assert mmdeploy_ort.model_kind(cfg) == kind
    deploy_cfg = Config.fromfile(osp.join(
        REPO, 'configs/deploy', f'{kind}_onnxruntime_dynamic.py'))
    mmdeploy_ort.check_deploy_config(deploy_cfg, kind, kind)


def test_deploy_configs_as_mmdeploy_reads_them():
    """MMDeploy's own readers: ONNX Runtime, dynamic shapes, opset 16, the
    post-processing that MMDetection's test_cfg does not set."""
    from mmdeploy.codebase.mmdet.deploy.utils import \
        get_post_processing_params
    from mmdeploy.utils import (get_backend, get_codebase, get_task_type,
                                is_dynamic_shape, load_config)
    tasks = dict(detection='ObjectDetection',
                 classification='Classification',
                 segmentation='Segmentation')
    for kind, (codebase, outputs) in mmdeploy_ort.KINDS.items():
        cfg, = load_config(osp.join(
            REPO, 'configs/deploy', f'{kind}_onnxruntime_dynamic.py'))
        assert get_backend(cfg).value == 'onnxruntime'
        assert get_codebase(cfg).value == codebase
        assert get_task_type(cfg).value == tasks.get(kind, 'ObjectDetection')
        assert is_dynamic_shape(cfg)
        assert cfg.onnx_config.dynamic_axes['input'] == {
            0: 'batch', 2: 'height', 3: 'width'}
        assert cfg.onnx_config.opset_version == 16
        assert cfg.onnx_config.output_names == outputs
        assert set(cfg.onnx_config.dynamic_axes) == {'input', *outputs}
        if codebase == 'mmdet':
            post = get_post_processing_params(cfg)
            assert (post.score_threshold, post.pre_top_k,
                    post.max_output_boxes_per_class) == (0.0, -1, 1000)


def test_features_export_matches_pytorch_at_other_sizes(tmp_path):
    """--part features: the demo detector's backbone + FPN, standard ONNX
    operators, ONNX Runtime equal to PyTorch at three sizes; independently,
    a plain session on another input gives the model's FPN levels."""
    import onnxruntime as ort
    from mmengine.config import Config
    ckpt = saved_weights(tmp_path / 'weights.pth')
    img = osp.join(REPO, 'docs/images/dct_basis_top16.png')
    report = deploy.main([DEMO_CONFIG, ckpt, '--img', img, '--part',
                          'features', '--work-dir', str(tmp_path / 'out')])
    assert report['export']['domains'] == ['']
    checks = report['export']['checks']
    assert [c['shape'][0] for c in checks] == [1, 2, 2]
    assert len({tuple(c['shape'][2:]) for c in checks}) == 3
    assert all(c['max_rel_error'] < 1e-4 for c in checks), checks
    assert not (tmp_path / 'out' / 'end2end.onnx').exists()
    model = init_model(Config.fromfile(DEMO_CONFIG), ckpt)
    x = torch.randn(1, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = [t.numpy() for t in model.extract_feat(x)]
    got = ort.InferenceSession(
        str(tmp_path / 'out' / 'features.onnx'),
        providers=['CPUExecutionProvider']).run(None, {'input': x.numpy()})
    assert [g.shape for g in got] == [r.shape for r in ref]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4,
                                   atol=1e-4 * np.abs(r).max())


def test_match_detections_pairs_by_label_and_box_iou():
    from mmengine.structures import InstanceData

    def dets(boxes, scores, labels):
        masks = torch.zeros(len(boxes), 20, 20, dtype=torch.bool)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            masks[k, int(y1):int(y2), int(x1):int(x2)] = True
        return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                            scores=torch.tensor(scores),
                            labels=torch.tensor(labels), masks=masks)

    ref = dets([[0, 0, 10, 10], [10, 10, 20, 20], [0, 10, 5, 20],
                [5, 5, 6, 6]], [0.9, 0.8, 0.5, 0.1], [0, 1, 2, 0])
    got = dets([[10, 10, 20, 20.5], [0, 0, 10, 10.1], [0, 10, 5, 20],
                [5, 5, 6, 6]], [0.79, 0.9, 0.5, 0.1], [1, 0, 0, 0])
    report = mmdeploy_ort.match_detections(ref, got)
    # the third has no twin of its label; the fourth scores below 0.3
    assert (report['compared'], report['matched']) == (3, 2)
    assert report['max_box_diff'] == pytest.approx(0.5)
    assert report['max_score_diff'] == pytest.approx(0.01, abs=1e-6)
    assert report['min_iou'] == pytest.approx(100 / 105)
    assert report['min_mask_iou'] == pytest.approx(1.0)  # masks snap to px
    none = mmdeploy_ort.match_detections(ref, got[torch.tensor([2])])
    assert (none['matched'], none['max_box_diff']) == (0, None)
