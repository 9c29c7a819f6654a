"""The real tools end to end on the synthetic COCO set: train, resume,
test with COCO mAP, 2-process gloo training, custom_imports from outside
the repository, and the missing-dataset error."""
import glob
import json
import os.path as osp
import sys
import textwrap

import pytest
import torch

from _helpers import (DEMO_CONFIG, REPO, TESTS, data_options, load_tool, run,
                      tool)


@pytest.fixture(scope='module')
def trained(synthetic_coco, module_tmp_path):
    """One epoch (2 iterations) of the demo config via tools/train.py."""
    work_dir = str(module_tmp_path / 'work_dir')
    proc = run(tool('train.py') + [
        DEMO_CONFIG, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_epochs=1'
    ] + data_options(synthetic_coco))
    return work_dir, proc.stdout


@pytest.mark.slow
def test_train_logs_progress_evaluates_and_saves(trained):
    work_dir, log = trained
    assert 'Epoch(train) [1][2/2]' in log
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(trained, synthetic_coco):
    work_dir, _ = trained
    proc = run(tool('train.py') + [
        DEMO_CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options',
        'train_cfg.max_epochs=2'
    ] + data_options(synthetic_coco))
    assert 'resumed epoch: 1, iter: 2' in proc.stdout
    assert 'Epoch(train) [2][2/2]' in proc.stdout
    assert 'Epoch(train) [1]' not in proc.stdout
    ckpt = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=False)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4


@pytest.mark.slow
def test_a_new_run_does_not_overwrite_earlier_checkpoints(
        trained, synthetic_coco):
    train = load_tool('train.py')
    work_dir, _ = trained
    before = {p: osp.getmtime(p)
              for p in glob.glob(osp.join(work_dir, '*.pth'))}
    with pytest.raises(FileExistsError, match=r'epoch_\d\.pth.*--resume'):
        train.main([DEMO_CONFIG, '--work-dir', work_dir, '--cfg-options'] +
                   data_options(synthetic_coco))
    assert before == {p: osp.getmtime(p)
                      for p in glob.glob(osp.join(work_dir, '*.pth'))}


@pytest.mark.slow
def test_resume_from_outside_the_work_dir_is_refused(trained, tmp_path):
    from mmfca.utils import resolve_resume
    work_dir, _ = trained
    foreign = tmp_path / 'epoch_1.pth'
    ours = glob.glob(osp.join(work_dir, 'epoch_*.pth'))[0]
    foreign.write_bytes(open(ours, 'rb').read())
    with pytest.raises(ValueError, match='outside the run.s work_dir'):
        resolve_resume(work_dir, str(foreign))
    assert resolve_resume(str(tmp_path / 'empty'), 'auto') is None


@pytest.mark.slow
def test_test_tool_writes_coco_bbox_and_segm_metrics(trained,
                                                     synthetic_coco):
    work_dir, _ = trained
    out = osp.join(work_dir, 'preds.pkl')
    ckpt = glob.glob(osp.join(work_dir, 'epoch_*.pth'))[0]
    proc = run(tool('test.py') + [
        DEMO_CONFIG, ckpt, '--work-dir',
        work_dir, '--out', out, '--cfg-options'
    ] + data_options(synthetic_coco))
    assert 'bbox_mAP_copypaste' in proc.stdout
    assert 'segm_mAP_copypaste' in proc.stdout
    metrics = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                     key=osp.getmtime)[-1]
    scores = json.load(open(metrics))
    assert {'coco/bbox_mAP', 'coco/segm_mAP_50'} <= set(scores)
    assert osp.getsize(out) > 0


@pytest.mark.slow
def test_two_process_gloo_training(synthetic_coco, tmp_path):
    """tools/dist_train.sh (torchrun, 2 processes, gloo on CPU): rank 0
    alone saves, and both ranks hold the same weights after training."""
    work_dir = str(tmp_path / 'dist')
    config = tmp_path / 'dist_config.py'
    config.write_text(
        f'_base_ = {DEMO_CONFIG!r}\n'
        'custom_imports = dict(\n'
        "    imports=['mmfca', '_helpers.rank_report_hook'],\n"
        '    allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='RankReportHook')]\n")
    proc = run([
        'bash', osp.join(REPO, 'tools/dist_train.sh'), str(config), '2',
        '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=2'
    ] + data_options(synthetic_coco)[:5] + ['train_dataloader.batch_size=2'],
        env=dict(OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT='29517',
                 PYTHONPATH=TESTS))
    assert 'Distributed launcher: pytorch' in proc.stdout
    # 8 images, 2 per process and step, 2 processes: 2 iterations
    assert 'Epoch(train) [1][2/2]' in proc.stdout
    assert glob.glob(osp.join(work_dir, '*.pth')) == [
        osp.join(work_dir, 'epoch_1.pth')]
    assert sorted(osp.basename(p) for p in glob.glob(
        osp.join(work_dir, 'saved_by_rank*'))) == ['saved_by_rank0']
    hashes = [open(osp.join(work_dir, f'params_rank{r}.sha256')).read()
              for r in (0, 1)]
    assert hashes[0] == hashes[1]


@pytest.mark.slow
def test_custom_imports_config_outside_the_repo(synthetic_coco, tmp_path):
    root = synthetic_coco.rstrip('/') + '/'
    (tmp_path / 'my_config.py').write_text(textwrap.dedent(f'''
        _base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
        custom_imports = dict(imports=['mmfca'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='FcaNet', depth=18,
                          norm_eval=False, init_cfg=None),
            neck=dict(in_channels=[64, 128, 256, 512]),
            roi_head=dict(bbox_head=dict(num_classes=3),
                          mask_head=dict(num_classes=3)))
        metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'))
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=(96, 96), keep_ratio=True),
            dict(type='PackDetInputs')]
        train_dataloader = dict(batch_size=4, num_workers=0,
            persistent_workers=False,
            dataset=dict(data_root='{root}', metainfo=metainfo,
                ann_file='annotations/instances_train2017.json',
                data_prefix=dict(img='train2017/'), pipeline=pipeline))
        val_dataloader = dict(batch_size=2, num_workers=0,
            persistent_workers=False,
            dataset=dict(data_root='{root}', metainfo=metainfo,
                ann_file='annotations/instances_val2017.json',
                data_prefix=dict(img='val2017/'), pipeline=pipeline))
        test_dataloader = val_dataloader
        val_evaluator = dict(
            ann_file='{root}annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1, val_interval=1)
        work_dir = 'work'
    '''))
    script = ('from mmengine.config import Config\n'
              'from mmengine.runner import Runner\n'
              'cfg = Config.fromfile("my_config.py")\n'
              'Runner.from_cfg(cfg).train()\n')
    proc = run([sys.executable, '-c', script], cwd=str(tmp_path),
               env=dict(PYTHONPATH=''))
    assert "'type': 'FcaNet'" in proc.stdout or "type='FcaNet'" in proc.stdout
    assert 'coco/bbox_mAP' in proc.stdout
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


def test_missing_coco_names_the_path_and_the_layout(tmp_path, monkeypatch):
    train = load_tool('train.py')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        train.main([osp.join(REPO, 'configs/mask_rcnn_fca50_coco.py')])
    msg = str(err.value)
    assert 'data/coco/annotations/instances_train2017.json' in msg
    assert 'instances_val2017.json' in msg and 'train2017/' in msg


def test_missing_config_is_a_clear_error(monkeypatch):
    train = load_tool('train.py')
    monkeypatch.chdir(REPO)
    with pytest.raises(FileNotFoundError, match='configs/nope.py does not'
                       ' exist; configs live under configs/') as err:
        train.main(['configs/nope.py'])
    assert 'did you mean' not in str(err.value)
    # a COCO config's path from before it moved into configs/det/
    with pytest.raises(FileNotFoundError, match=r'configs/faster-rcnn_fca50_'
                       r'fpn_1x_coco\.py does not exist \(did you mean '
                       r'configs/det/faster-rcnn_fca50_fpn_1x_coco\.py\?\)'):
        train.main(['configs/faster-rcnn_fca50_fpn_1x_coco.py'])


def test_load_config_keeps_pkg_resources_notes_off_the_console():
    """mmengine resolves mmdet:: base configs through setuptools'
    deprecated pkg_resources; load_config silences that note only."""
    import warnings

    from mmfca.utils import load_config
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        cfg = load_config(DEMO_CONFIG)
        warnings.warn('pkg_resources after load_config', UserWarning)
    assert cfg.model.backbone.type == 'FcaNet'
    assert [str(w.message) for w in caught
            if 'pkg_resources' in str(w.message)] == [
                'pkg_resources after load_config']
