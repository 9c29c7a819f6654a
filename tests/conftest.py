"""Fixtures shared by mmfca's tests. Helpers (paths, subprocess runners,
config builders) are in the ``_helpers`` package next to this file, found
through ``pythonpath = tests`` in setup.cfg's ``[tool:pytest]`` section.

Markers (registered in setup.cfg): ``slow`` marks tests that start training
subprocesses (tools/train.py, tools/demo.py, dist_train.sh, the ablation
tool); ``pytest -m "not slow"`` is the fast selection, ``make test`` and CI
run everything.

Disk: a passing test's ``tmp_path`` is deleted when it ends (setup.cfg);
fixtures shared by a module's tests write into ``module_tmp_path``, which
is deleted when the module ends.
"""
import shutil

import pytest

from mmfca.datasets import (make_synthetic_coco, make_synthetic_imagenet,
                            make_synthetic_segmentation)


@pytest.fixture(scope='module')
def module_tmp_path(request, tmp_path_factory):
    """A folder for a module's shared fixtures (work dirs, checkpoints),
    deleted when the module's tests are done."""
    path = tmp_path_factory.mktemp(request.module.__name__.split('.')[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def synthetic_coco(tmp_path_factory):
    """A tiny synthetic COCO set (8 train / 4 val images, 96x96)."""
    root = tmp_path_factory.mktemp('synthetic_coco')
    make_synthetic_coco(str(root), num_train=8, num_val=4, seed=0,
                        img_size=(96, 96))
    return str(root)


@pytest.fixture(scope='session')
def imagenet_root(tmp_path_factory):
    """A tiny synthetic ImageNet-layout set (8 train / 12 val images)."""
    return make_synthetic_imagenet(
        str(tmp_path_factory.mktemp('imagenet')), num_train=8, num_val=12)


@pytest.fixture(scope='session')
def seg_root(tmp_path_factory):
    """A tiny synthetic segmentation set (4 train / 2 val images)."""
    return make_synthetic_segmentation(
        str(tmp_path_factory.mktemp('seg')), num_train=4, num_val=2)
