"""tools/demo.py end to end on a tiny set: a readable console (progress,
evaluation, summary; no library deprecation walls), overlays of the ground
truth beside the predictions, and the printed next commands (evaluate,
export, deploy, visualise) working on the demo's checkpoint as printed.
One demo run serves every test of this module."""
import glob
import json
import os.path as osp
import re
import shlex

import numpy as np
import pytest
import torch
from PIL import Image

from _helpers import DEMO_CONFIG, REPO, load_tool, run, tool

from mmfca.datasets import make_synthetic_coco

demo = load_tool('demo.py')
DEMO_DATA, count_val_instances = demo.DEMO_DATA, demo.count_val_instances

#: The tests' images (the demo's are 160 px).
IMG = 96


@pytest.fixture(scope='module')
def demo_run(module_tmp_path):
    """tools/demo.py on the demo's kind of set (heavily occluded shapes are
    crowd), small: 8 train / 4 val images, one epoch."""
    tmp_path = module_tmp_path
    data = str(tmp_path / 'data')
    make_synthetic_coco(data, num_train=8, num_val=4, seed=0,
                        img_size=(IMG, IMG),
                        ignore_visible_below=DEMO_DATA[
                            'ignore_visible_below'])
    work_dir = str(tmp_path / 'demo')
    proc = run(tool('demo.py') + [
        '--work-dir', work_dir, '--data-root', data,
        '--num-overlays', '2', '--seed', '3', '--cfg-options',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        'default_hooks.logger.interval=1'
    ])
    return dict(out=proc.stdout, data=data, work_dir=work_dir,
                ckpt=osp.join(work_dir, 'epoch_1.pth'))


def warning_lines(text):
    """Lines of Python warnings (``UserWarning: ...``) or pkg_resources'
    notes in a console output."""
    return [line for line in text.splitlines()
            if re.search(r'\w*Warning: |pkg_resources', line)]


def coco_metrics(line):
    """``{name: value}`` of an ``Epoch(val)``/``Epoch(test)`` log line."""
    found = re.findall(r'coco/(\w+): (-?[\d.]+)', line)
    return {k: float(v) for k, v in found}


def next_command(out, script, part=None):
    """The argv of the summary's printed command that runs ``script``
    (deploy.py: with ``--part part``, or without --part)."""
    lines = out[out.index('[demo] next'):].splitlines()
    found = [shlex.split(line) for line in lines if script in line and (
        f'--part {part}' in line if part else '--part' not in line)]
    assert len(found) == 1, lines
    return found[0]


@pytest.mark.slow
def test_demo_prints_progress_and_a_summary(demo_run):
    out, data, work_dir = demo_run['out'], demo_run['data'], \
        demo_run['work_dir']
    val = json.load(open(osp.join(data,
                                  'annotations/instances_val2017.json')))
    num_crowd = sum(a['iscrowd'] for a in val['annotations'])
    assert num_crowd > 0
    assert 'Epoch(train) [1][2/2]' in out and 'Epoch(val) [1]' in out
    assert not re.search(r'deprecat|Warning', out), out[-3000:]
    summary = out[out.index('[demo] summary'):]
    # each a COCO AP in [0, 1] (COCO's -1, "no ground truth", fails)
    assert re.search(r'bbox mAP [01]\.\d{3} \(AP50 [01]\.\d{3}, AP75 '
                     r'[01]\.\d{3}\); segm mAP [01]\.\d{3} \(AP50 '
                     r'[01]\.\d{3}\) on 4 synthetic',
                     summary), summary
    # the summary's numbers are the evaluation's, rounded
    logged = coco_metrics(next(line for line in out.splitlines()
                               if 'Epoch(val)' in line and 'coco/' in line))
    assert (f'bbox mAP {logged["bbox_mAP"]:.3f} (AP50 '
            f'{logged["bbox_mAP_50"]:.3f}, AP75 {logged["bbox_mAP_75"]:.3f})'
            f'; segm mAP {logged["segm_mAP"]:.3f} (AP50 '
            f'{logged["segm_mAP_50"]:.3f}) on 4 synthetic') in summary
    assert (f'({len(val["annotations"]) - num_crowd} val instances; '
            f'{num_crowd} more, less than 30% visible, are ignored as '
            f'crowd)') in summary
    assert 'not written with the demo' not in out
    assert f'checkpoint: {work_dir}/epoch_1.pth' in summary
    assert 'full log:' in summary and re.search(r'time: \d+ s', summary)
    # the seed reached the run
    log = glob.glob(osp.join(work_dir, '*', '*.log'))[0]
    assert 'seed: 3' in open(log).read() or 'seed=3' in open(log).read()
    # the next commands name the checkpoint and no trust flag
    nexts = out[out.index('[demo] next'):]
    for script, part in (('tools/test.py', None), ('deploy.py', 'features'),
                         ('deploy.py', None),
                         ('visualize_attention.py', None)):
        argv = next_command(out, script, part)
        assert demo_run['ckpt'] in argv
        # deploy.py's --work-dir is its output folder, not a trust flag
        assert ('--work-dir' in argv) == (script == 'deploy.py')
        assert not any('work_dir=' in a or 'trusted' in a for a in argv)
    assert nexts.count('\n  # ') == 4


@pytest.mark.slow
def test_overlays_are_four_times_larger_with_ground_truth_beside(demo_run):
    outs = sorted(glob.glob(osp.join(demo_run['work_dir'], 'overlays',
                                     '*.png')))
    assert [osp.basename(p) for p in outs] == ['000000000001.png',
                                               '000000000002.png']
    side = IMG * demo.OVERLAY_SCALE
    with Image.open(outs[0]) as img:
        # two panels (ground truth, prediction) side by side; titles and
        # room for the labels of shapes at the top edge above them
        assert img.size == (2 * side,
                            demo.TITLE_ROOM + demo.LABEL_ROOM + side)


def test_labels_sit_above_their_boxes():
    """A drawn box keeps its inside untouched by its label (MMDetection's
    own visualizer writes the label inside the box's top-left corner)."""
    from mmengine.structures import InstanceData
    from mmdet.visualization import DetLocalVisualizer
    instances = InstanceData(
        bboxes=torch.tensor([[40., 60., 200., 180.]]),
        labels=torch.tensor([1]))
    white = np.full((240, 240, 3), 255, np.uint8)
    inside = (slice(60 + 4, 180 - 4), slice(40 + 4, 200 - 4))
    meta = dict(classes=('a', 'b'), palette=[(255, 0, 0), (0, 0, 255)])
    theirs = DetLocalVisualizer.get_instance('test-mmdet-labels')
    ours = demo.overlay_visualizer()
    drawn = {}
    for name, vis in (('theirs', theirs), ('ours', ours)):
        vis.dataset_meta = meta
        drawn[name] = vis._draw_instances(white.copy(), instances,
                                          meta['classes'], meta['palette'])
    assert (drawn['theirs'][inside] != 255).any()  # the label covers
    assert (drawn['ours'][inside] == 255).all()
    # the label is there, above the box
    above = drawn['ours'][60 - 4 - demo.LABEL_SIZE - 4:60 - 3, 40:200]
    assert (above < 100).sum() > 50  # its dark background


@pytest.mark.slow
def test_ground_truth_is_the_non_crowd_annotations(demo_run):
    from pycocotools.coco import COCO
    ann = osp.join(demo_run['data'], 'annotations/instances_val2017.json')
    coco = COCO(ann)
    classes = ['rectangle', 'ellipse', 'triangle']
    path = sorted(glob.glob(osp.join(demo_run['data'], 'val2017',
                                     '*.jpg')))[0]
    gt = demo.ground_truth(coco, path, classes)
    image = next(i for i in coco.dataset['images']
                 if i['file_name'] == osp.basename(path))
    anns = [a for a in coco.imgToAnns[image['id']] if not a['iscrowd']]
    assert len(gt) == len(anns) > 0
    names = {c['id']: c['name'] for c in coco.dataset['categories']}
    for i, a in enumerate(anns):
        x, y, w, h = a['bbox']
        assert gt.bboxes[i].tolist() == pytest.approx([x, y, x + w, y + h])
        assert classes[gt.labels[i]] == names[a['category_id']]
        assert np.array_equal(gt.masks[i].numpy(), coco.annToMask(a) > 0)
    big = demo.enlarge(gt, 4, 20)
    assert big.masks.shape == (len(anns), 20 + 4 * IMG, 4 * IMG)
    torch.testing.assert_close(big.bboxes[:, 1], gt.bboxes[:, 1] * 4 + 20)
    torch.testing.assert_close(big.bboxes[:, 2], gt.bboxes[:, 2] * 4)
    # the enlarged mask covers about 16x the pixels
    ratio = big.masks.sum((1, 2)).float() / gt.masks.sum((1, 2)).float()
    assert ((ratio > 14) & (ratio < 18)).all(), ratio


@pytest.mark.slow
def test_printed_test_command_gives_the_demo_evaluation(demo_run):
    out = demo_run['out']
    proc = run(next_command(out, 'tools/test.py'))
    # the checkpoint's training state loaded through the safe loader
    assert ('Loads checkpoint by weights_only backend from path: '
            f'{demo_run["ckpt"]}') in proc.stdout
    assert warning_lines(proc.stdout) == []
    tested = coco_metrics(next(line for line in proc.stdout.splitlines()
                               if 'Epoch(test)' in line))
    evaluated = coco_metrics(next(
        line for line in out.splitlines()
        if 'Epoch(val)' in line and 'coco/' in line))
    assert len(evaluated) == 12 and tested == evaluated


@pytest.mark.slow
def test_printed_export_command_matches_pytorch_with_the_weights(demo_run):
    import onnxruntime as ort
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    argv = next_command(demo_run['out'], 'deploy.py', 'features')
    proc = run(argv)
    assert warning_lines(proc.stdout) == []
    work_dir = argv[argv.index('--work-dir') + 1]
    with open(osp.join(work_dir, 'deploy_check.json')) as f:
        checks = json.load(f)['export']['checks']
    assert len(checks) == 3
    assert all(c['max_rel_error'] < 1e-4 for c in checks)
    # independently: the graph computes the checkpoint's backbone + FPN
    cfg = Config.fromfile(DEMO_CONFIG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    state = torch.load(demo_run['ckpt'], map_location='cpu',
                       weights_only=False)['state_dict']  # our own file
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(1, 3, 128, 160, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = [t.numpy() for t in model.extract_feat(x)]
    got = ort.InferenceSession(
        osp.join(work_dir, 'features.onnx'),
        providers=['CPUExecutionProvider']).run(None, {'input': x.numpy()})
    assert len(got) == len(ref) == 4
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4,
                                   atol=1e-4 * np.abs(r).max())


@pytest.mark.slow
def test_printed_deploy_command_gives_onnx_map_beside_pytorchs(demo_run):
    """The whole detector to ONNX Runtime, as printed: PyTorch's mAPs are
    the demo's evaluation, ONNX Runtime's within 0.01 of them."""
    pytest.importorskip('mmdeploy', reason='set up by tools/setup_env.sh')
    argv = next_command(demo_run['out'], 'deploy.py')
    proc = run(argv)
    assert warning_lines(proc.stdout) == []
    work_dir = argv[argv.index('--work-dir') + 1]
    with open(osp.join(work_dir, 'deploy_check.json')) as f:
        report = json.load(f)
    assert report['export']['domains'] == ['']  # standard ONNX only
    evaluated = coco_metrics(next(
        line for line in demo_run['out'].splitlines()
        if 'Epoch(val)' in line and 'coco/' in line))
    onnx, pytorch = (report['eval'][k] for k in ('onnxruntime', 'pytorch'))
    assert {k[len('coco/'):]: v for k, v in pytorch.items()
            if k.startswith('coco/')} == evaluated
    # the one-epoch detector detects (its mAP may be near 0 on a stack)
    compared = report['compared']
    assert compared['pytorch_detections'] > 0
    assert compared['onnx_detections'] > 0
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert abs(onnx[key] - pytorch[key]) <= 0.01, (key, onnx, pytorch)
    summary = proc.stdout[proc.stdout.index('[deploy] summary'):]
    assert (f'segm_mAP     ONNX Runtime {onnx["coco/segm_mAP"]:.3f}   '
            f'PyTorch {pytorch["coco/segm_mAP"]:.3f}') in summary


@pytest.mark.slow
def test_printed_visualise_command_plots_every_stage(demo_run):
    argv = next_command(demo_run['out'], 'visualize_attention.py')
    proc = run(argv)
    out = argv[argv.index('--out') + 1]
    assert f'{out}: 4 stages' in proc.stdout
    with Image.open(out) as img:
        assert img.size == (1100, 900)


def test_next_commands_of_a_default_run_are_short(monkeypatch):
    """From the repository root, after `make demo`: relative paths, and no
    data options (the config's data_root is the demo's set)."""
    monkeypatch.chdir(REPO)
    run_dir = osp.join(REPO, 'work_dirs/demo/run_1')
    commands = demo.next_commands(
        osp.join(run_dir, 'epoch_6.pth'), osp.join(REPO, demo.DEMO_ROOT),
        osp.join(REPO, demo.DEMO_ROOT, 'val2017/000000000001.jpg'), run_dir)
    config = 'configs/demo/mask-rcnn_fca18_fpn_synthetic-coco_cpu.py'
    ckpt = 'work_dirs/demo/run_1/epoch_6.pth'
    assert [argv[1:] for _, argv in commands] == [
        ['tools/test.py', config, ckpt],
        ['tools/deployment/deploy.py', config, ckpt, '--part', 'features',
         '--img', 'data/synthetic_coco_demo/val2017/000000000001.jpg',
         '--work-dir', 'work_dirs/demo/run_1/features'],
        ['tools/deployment/deploy.py', config, ckpt, '--work-dir',
         'work_dirs/demo/run_1/deploy', '--eval'],
        ['tools/analysis_tools/visualize_attention.py', config, ckpt,
         'data/synthetic_coco_demo/val2017/000000000001.jpg', '--out',
         'work_dirs/demo/run_1/attention.png']]


def test_demo_says_when_its_data_is_not_the_demo_set(synthetic_coco,
                                                     capsys):
    val = json.load(open(osp.join(synthetic_coco,
                                  'annotations/instances_val2017.json')))
    # the tests' set marks no crowd: every instance counts
    assert count_val_instances(synthetic_coco) == (len(val['annotations']),
                                                   0)
    assert (f'[demo] note: {synthetic_coco} was not written with the '
            f"demo's settings") in capsys.readouterr().out
