"""tools/demo.py end to end on a tiny set: a readable console (progress,
evaluation, summary; no library deprecation walls), overlays written."""
import glob
import os.path as osp
import re

from conftest import run, tool


def test_demo_prints_progress_and_a_summary(synthetic_coco, tmp_path):
    work_dir = str(tmp_path / 'demo')
    proc = run(tool('demo.py') + [
        '--work-dir', work_dir, '--data-root', synthetic_coco,
        '--num-overlays', '2', '--seed', '3', '--cfg-options',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        'default_hooks.logger.interval=1'
    ])
    out = proc.stdout
    assert 'Epoch(train) [1][2/2]' in out and 'Epoch(val) [1]' in out
    assert not re.search(r'deprecat|Warning', out), out[-3000:]
    summary = out[out.index('[demo] summary'):]
    assert re.search(r'bbox mAP -?[\d.]+ \(AP50 -?[\d.]+, AP75 -?[\d.]+\); '
                     r'segm mAP -?[\d.]+ \(AP50 -?[\d.]+\) on 4 synthetic',
                     summary), summary
    assert f'checkpoint: {work_dir}/epoch_1.pth' in summary
    assert 'full log:' in summary and re.search(r'time: \d+ s', summary)
    assert len(glob.glob(osp.join(work_dir, 'overlays', '*.png'))) == 2
    # the seed reached the run
    log = glob.glob(osp.join(work_dir, '*', '*.log'))[0]
    assert 'seed: 3' in open(log).read() or 'seed=3' in open(log).read()
