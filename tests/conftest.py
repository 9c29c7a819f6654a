import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# test helpers (tests/converters/release_fcanet.py, the float64 reference
# of tests/models/layers) import by name
for _helpers in ('converters', osp.join('models', 'layers')):
    sys.path.insert(0, osp.join(REPO, 'tests', _helpers))

DEMO_CONFIG = osp.join(
    REPO, 'configs/demo/mask-rcnn_fca18_fpn_synthetic-coco_cpu.py')


@pytest.fixture(scope='session')
def synthetic_coco(tmp_path_factory):
    """A tiny synthetic COCO set (8 train / 4 val images, 96x96)."""
    from mmfca.datasets import make_synthetic_coco
    root = tmp_path_factory.mktemp('synthetic_coco')
    make_synthetic_coco(str(root), num_train=8, num_val=4, seed=0,
                        img_size=(96, 96))
    return str(root)


def data_options(root):
    """--cfg-options pointing the demo config at ``root``."""
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
        'train_dataloader.batch_size=4', 'train_cfg.val_interval=1',
        'log_level=INFO'
    ]


def run(args, cwd=REPO, timeout=900, env=None):
    """Run a command with this interpreter; return the completed process
    (stdout+stderr merged), failing the test with the output on error."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.run(args, cwd=cwd, env=full_env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc


def tool(name):
    return [sys.executable, osp.join(REPO, 'tools', name)]
