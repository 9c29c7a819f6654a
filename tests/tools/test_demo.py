"""tools/demo.py end to end on a tiny set: a readable console (progress,
evaluation, summary; no library deprecation walls), overlays written."""
import glob
import json
import os.path as osp
import re

import pytest

from _helpers import load_tool, run, tool

from mmfca.datasets import make_synthetic_coco

demo = load_tool('demo.py')
DEMO_DATA, count_val_instances = demo.DEMO_DATA, demo.count_val_instances


@pytest.mark.slow
def test_demo_prints_progress_and_a_summary(tmp_path):
    # the demo's kind of set (heavily occluded shapes are crowd), small
    data = str(tmp_path / 'data')
    make_synthetic_coco(data, num_train=8, num_val=4, seed=0,
                        img_size=(96, 96),
                        ignore_visible_below=DEMO_DATA[
                            'ignore_visible_below'])
    val = json.load(open(osp.join(data,
                                  'annotations/instances_val2017.json')))
    num_crowd = sum(a['iscrowd'] for a in val['annotations'])
    assert num_crowd > 0
    work_dir = str(tmp_path / 'demo')
    proc = run(tool('demo.py') + [
        '--work-dir', work_dir, '--data-root', data,
        '--num-overlays', '2', '--seed', '3', '--cfg-options',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        'default_hooks.logger.interval=1'
    ])
    out = proc.stdout
    assert 'Epoch(train) [1][2/2]' in out and 'Epoch(val) [1]' in out
    assert not re.search(r'deprecat|Warning', out), out[-3000:]
    summary = out[out.index('[demo] summary'):]
    # each a COCO AP in [0, 1] (COCO's -1, "no ground truth", fails)
    assert re.search(r'bbox mAP [01]\.\d{3} \(AP50 [01]\.\d{3}, AP75 '
                     r'[01]\.\d{3}\); segm mAP [01]\.\d{3} \(AP50 '
                     r'[01]\.\d{3}\) on 4 synthetic',
                     summary), summary
    assert (f'({len(val["annotations"]) - num_crowd} val instances; '
            f'{num_crowd} more, less than 30% visible, are ignored as '
            f'crowd)') in summary
    assert 'not written with the demo' not in out
    assert f'checkpoint: {work_dir}/epoch_1.pth' in summary
    assert 'full log:' in summary and re.search(r'time: \d+ s', summary)
    assert len(glob.glob(osp.join(work_dir, 'overlays', '*.png'))) == 2
    # the seed reached the run
    log = glob.glob(osp.join(work_dir, '*', '*.log'))[0]
    assert 'seed: 3' in open(log).read() or 'seed=3' in open(log).read()


def test_demo_says_when_its_data_is_not_the_demo_set(synthetic_coco,
                                                     capsys):
    val = json.load(open(osp.join(synthetic_coco,
                                  'annotations/instances_val2017.json')))
    # the tests' set marks no crowd: every instance counts
    assert count_val_instances(synthetic_coco) == (len(val['annotations']),
                                                   0)
    assert (f'[demo] note: {synthetic_coco} was not written with the '
            f"demo's settings") in capsys.readouterr().out
