"""Shared helpers of mmfca's test suite (no tests in here).

How tests import them: ``setup.cfg``'s ``[tool:pytest]`` section sets
``pythonpath = tests`` (pytest >= 7), so every test module writes
``from _helpers import ...``. No test edits ``sys.path`` and no test module
imports another one; fixtures live in ``tests/conftest.py``; scripts under
``tools/`` are imported only through :func:`load_tool`.

Layout: test modules mirror the repository, ``tests/<dir>/test_<module>.py``
for ``mmfca/<dir>/<module>.py`` (``tests/tools/`` and ``tests/configs/`` for
the scripts and the configs; docs/layout.md lists the FCA layer's five
files); each behaviour is asserted in one place. Basenames are unique
across the suite (pytest imports test modules by basename).

Modules: :mod:`_helpers.backbone_checks` (the checks of MMDetection's and
MMPretrain's backbone tests), :mod:`_helpers.configs` (config dicts
compared key by key), :mod:`_helpers.runner_configs` (the classification
and segmentation configs shrunk to the synthetic sets),
:mod:`_helpers.release_fcanet` (the release's network, for parity tests),
:mod:`_helpers.rank_report_hook` (a hook that training subprocesses load
with ``custom_imports``).

The references the FCA layer is checked against (its float64 formula, SE,
the release's squeeze) and the kernel counter are the package's testing
module, :mod:`mmfca.testing`, shared with the benchmarks.

Fast selection: ``pytest -m "not slow"`` skips the tests that start
training subprocesses (marker registered in setup.cfg); ``make test`` and
CI run everything.
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

#: The repository root and the tests folder (on ``PYTHONPATH`` of a
#: subprocess that needs ``_helpers``).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTS = osp.join(REPO, 'tests')

DEMO_CONFIG = osp.join(
    REPO, 'configs/demo/mask-rcnn_fca18_fpn_synthetic-coco_cpu.py')


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


def swapped_fcanet(swap):
    """FcaNet-18 (seeded, eval mode) with ``swap(model)`` applied, checked
    to keep the published model: every published state-dict entry and the
    outputs unchanged. Returns the model, ``swap``'s result, the state
    before and the state after."""
    import torch

    from mmfca.models import FcaNet
    torch.manual_seed(0)
    model = FcaNet(18).eval()
    state = model.state_dict()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    result = swap(model)
    after_state = model.state_dict()
    assert all(torch.equal(after_state[k], state[k]) for k in state)
    with torch.no_grad():
        after = model(x)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    return model, result, state, after_state


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
    """The command line that runs ``tools/<name>`` with this interpreter."""
    return [sys.executable, osp.join(REPO, 'tools', name)]


def load_tool(name):
    """Import the script ``tools/<name>`` as a module (the scripts are not a
    package), once per process: ``load_tool('deployment/deploy.py')``.

    The module is registered in ``sys.modules`` as ``tool_<path>`` (slashes
    as underscores, e.g. ``tool_deployment_deploy``) so that names it
    defines pickle and introspect as usual.
    """
    path = osp.join(REPO, 'tools', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'No tool {name!r} under {REPO}/tools')
    mod_name = 'tool_' + name[:-len('.py')].replace('/', '_')
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module
