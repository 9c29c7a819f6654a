"""A run killed with SIGKILL mid-training and resumed with --resume ends
with exactly the weights of an uninterrupted run (deterministic mode, same
seed), through the real tools/train.py."""
import os
import os.path as osp
import signal
import subprocess

import pytest
import torch

from _helpers import DEMO_CONFIG, REPO, data_options, run, tool


def options(root):
    return data_options(root) + [
        'randomness.seed=0', 'randomness.deterministic=True',
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=5',
        'default_hooks.logger.interval=1'
    ]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(synthetic_coco, tmp_path):
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    run(tool('train.py') + [DEMO_CONFIG, '--work-dir', straight,
                            '--cfg-options'] + options(synthetic_coco))

    args = tool('train.py') + [DEMO_CONFIG, '--work-dir', killed,
                               '--cfg-options'] + options(synthetic_coco)
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    log = []
    for line in proc.stdout:  # kill in the middle of epoch 2
        log.append(line)
        if 'Epoch(train) [2][1/2]' in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, ''.join(log[-20:])
    assert osp.isfile(osp.join(killed, 'epoch_1.pth'))
    assert not osp.isfile(osp.join(killed, 'epoch_3.pth'))

    resumed = run(tool('train.py') + [
        DEMO_CONFIG, '--work-dir', killed, '--resume', '--cfg-options'
    ] + options(synthetic_coco))
    assert 'resumed epoch: 1, iter: 2' in resumed.stdout

    a = torch.load(osp.join(straight, 'epoch_3.pth'), weights_only=False)
    b = torch.load(osp.join(killed, 'epoch_3.pth'), weights_only=False)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    different = [k for k in a['state_dict']
                 if not torch.equal(a['state_dict'][k], b['state_dict'][k])]
    assert not different, different[:5]
