#!/usr/bin/env python
# Copyright (c) mmfca contributors. All rights reserved.
"""The set-up's decision step: how to get mmcv 2.1.0 with ops that fit the
torch of this interpreter, on a CPU-only machine or one with GPUs.

``tools/setup_env.sh`` runs ``eval "$(python tools/mmcv_build_plan.py)"``.
The script probes the machine (:func:`probe`), decides (:func:`plan`, pure:
the tests feed it made-up facts) and prints shell assignments:

* ``MMCV_SOURCE=wheel MMCV_WHEEL=...``: install a wheel, either one that an
  earlier build cached for exactly this Python, torch and CUDA set-up, or
  the CPU wheel of ``../shared/wheels`` (only for torch 2.14, and never on a
  machine where torch sees a GPU unless the wheel has CUDA ops);
* ``MMCV_SOURCE=build``: build from source with ``MMCV_WITH_OPS=1``,
  ``FORCE_CUDA`` (1 when torch sees a GPU), ``MMCV_CXX_STD`` (c++20 when
  torch's headers require it, else mmcv's own c++17), and for CUDA the
  ``CUDA_HOME`` of an nvcc that matches torch's CUDA and the
  ``TORCH_CUDA_ARCH_LIST`` of the visible GPUs; the built wheel goes to
  ``MMCV_CACHE_DIR``;
* ``MMCV_SOURCE=pip-nvcc MMCV_PIP_NVCC=...``: torch sees a GPU, no matching
  nvcc is installed, and PyPI has one for this CUDA (13 and newer ship
  nvcc, headers and runtime in one ``nvidia/cuNN`` tree): install it and
  ask again.

When none applies it exits with status 2 and says what is missing and how
to provide it.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

MMCV_VERSION = '2.1.0'
#: The torch (major.minor) that ../shared/wheels' mmcv was built against
#: (see its README); it fits no other.
SHARED_WHEEL_TORCH = '2.14'
#: The first CUDA whose PyPI packages put nvcc, headers and runtime under
#: one root that can serve as CUDA_HOME.
PIP_NVCC_MIN_CUDA = 13


class PlanError(RuntimeError):
    """The set-up cannot proceed; the message says what to provide."""


def wheel_has_cuda_ops(path):
    """Whether an mmcv wheel's compiled ops link torch's CUDA library."""
    with zipfile.ZipFile(path) as whl:
        libs = [n for n in whl.namelist() if re.match(r'mmcv/_ext.*\.so$', n)]
        return any(b'c10_cuda' in whl.read(n) for n in libs)


def nvcc_version(nvcc):
    """``'13.0'`` from ``nvcc --version``, or None if it does not run."""
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def find_nvccs():
    """Every nvcc in the usual places: ``$CUDA_HOME``, ``$PATH``,
    ``/usr/local/cuda*`` and PyPI's ``nvidia`` packages of this Python."""
    import site
    paths = [osp.join(os.environ[k], 'bin', 'nvcc')
             for k in ('CUDA_HOME', 'CUDA_PATH') if os.environ.get(k)]
    paths.append(shutil.which('nvcc') or '')
    paths += sorted(glob.glob('/usr/local/cuda*/bin/nvcc'))
    for sp in site.getsitepackages():
        paths += sorted(
            glob.glob(osp.join(sp, 'nvidia', 'cu*', 'bin', 'nvcc')))
    found, seen = [], set()
    for path in paths:
        if not path or not os.access(path, os.X_OK):
            continue
        real = osp.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        home = osp.dirname(osp.dirname(path))
        found.append(dict(path=path, home=home, version=nvcc_version(path),
                          headers=osp.isfile(
                              osp.join(home, 'include', 'cuda_runtime.h'))))
    return found


def probe(shared_dir, cache_root):
    """The facts :func:`plan` decides on, read off this interpreter."""
    import torch
    gpus = []
    if torch.cuda.is_available():
        gpus = sorted({'{}.{}'.format(*torch.cuda.get_device_capability(i))
                       for i in range(torch.cuda.device_count())})
    header = osp.join(osp.dirname(torch.__file__), 'include', 'torch', 'csrc',
                      'api', 'include', 'torch', 'all.h')
    with open(header) as f:
        cxx20 = '__cplusplus < 202002L' in f.read()
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    shared = sorted(glob.glob(osp.join(
        shared_dir, f'mmcv-{MMCV_VERSION}-{tag}-{tag}-linux_x86_64.whl')))
    return dict(
        python_tag=tag,
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        gpu_capabilities=gpus,
        cxx20_required=cxx20,
        nvccs=find_nvccs() if gpus else [],
        shared_wheels=[dict(path=p, cuda_ops=wheel_has_cuda_ops(p))
                       for p in shared],
        cache_root=cache_root,
        pip_nvcc_tried=bool(os.environ.get('MMFCA_PIP_NVCC_TRIED')))


def cache_dir(facts):
    """The folder of the wheel built for exactly these facts."""
    flavour = 'cpu'
    if facts['gpu_capabilities']:
        cuda = facts['torch_cuda'].replace('.', '')
        archs = '_'.join(c.replace('.', '') for c in facts['gpu_capabilities'])
        flavour = f'cu{cuda}-sm{archs}'
    torch_version = facts['torch_version'].replace('+', '_')
    return osp.join(facts['cache_root'],
                    f'mmcv-{MMCV_VERSION}-{facts["python_tag"]}-'
                    f'torch{torch_version}-{flavour}')


def pick_nvcc(facts):
    """The nvcc whose CUDA matches torch's: the same major.minor first, else
    the same major (torch's extension builder refuses another major)."""
    want = facts['torch_cuda']
    usable = [n for n in facts['nvccs'] if n['version'] and n['headers']]
    for same in (lambda v: v == want,
                 lambda v: v.split('.')[0] == want.split('.')[0]):
        for nvcc in usable:
            if same(nvcc['version']):
                return nvcc
    return None


def plan(facts):
    """Decide how to get mmcv. Pure: the facts come from :func:`probe`.

    Args:
        facts (dict): ``python_tag``, ``torch_version``, ``torch_cuda``
            (None for a CPU build of torch), ``gpu_capabilities`` (e.g.
            ``['9.0']``; empty when torch sees no GPU), ``cxx20_required``,
            ``nvccs`` (dicts with ``path``, ``home``, ``version``,
            ``headers``), ``shared_wheels`` (dicts with ``path`` and
            ``cuda_ops``), ``cache_root`` and ``pip_nvcc_tried``.

    Returns:
        dict: The shell assignments (see the module docstring).

    Raises:
        PlanError: When a GPU is visible and no nvcc for torch's CUDA can be
            found or installed.
    """
    gpus = facts['gpu_capabilities']
    folder = cache_dir(facts)
    cached = sorted(glob.glob(osp.join(folder, 'mmcv-*.whl')))
    if cached:
        return dict(MMCV_SOURCE='wheel', MMCV_WHEEL=cached[0])
    torch_mm = '.'.join(facts['torch_version'].split('+')[0].split('.')[:2])
    if torch_mm == SHARED_WHEEL_TORCH:
        for wheel in facts['shared_wheels']:
            if wheel['cuda_ops'] or not gpus:
                return dict(MMCV_SOURCE='wheel', MMCV_WHEEL=wheel['path'])
    build = dict(MMCV_SOURCE='build', MMCV_WITH_OPS='1', FORCE_CUDA='0',
                 MMCV_CXX_STD='c++20' if facts['cxx20_required'] else 'c++17',
                 MMCV_CACHE_DIR=folder)
    if not gpus:
        return build
    cuda = facts['torch_cuda']
    nvcc = pick_nvcc(facts)
    if nvcc is None:
        major = int(cuda.split('.')[0])
        if major >= PIP_NVCC_MIN_CUDA and not facts['pip_nvcc_tried']:
            return dict(MMCV_SOURCE='pip-nvcc', MMCV_PIP_NVCC=(
                f'nvidia-cuda-nvcc=={cuda}.* nvidia-cuda-runtime=={cuda}.*'))
        seen = ', '.join(f'{n["path"]} (CUDA {n["version"]}'
                         f'{"" if n["headers"] else ", no headers"})'
                         for n in facts['nvccs']) or 'none'
        raise PlanError(
            f'torch {facts["torch_version"]} sees GPU(s) of compute '
            f'capability {", ".join(gpus)}, so mmcv\'s CUDA ops must be '
            f'built, which needs nvcc and headers of CUDA {cuda} (the major '
            f'version must match torch\'s). Found: {seen}. Install the CUDA '
            f'toolkit {cuda} and set CUDA_HOME to it'
            + (f', or pip install "nvidia-cuda-nvcc=={cuda}.*" '
               f'"nvidia-cuda-runtime=={cuda}.*" into this environment'
               if major >= PIP_NVCC_MIN_CUDA else '') + ', then run the '
            'set-up again. (A CPU-only mmcv would fail at the first CUDA '
            'op, so it is not installed.)')
    build.update(FORCE_CUDA='1', CUDA_HOME=nvcc['home'],
                 TORCH_CUDA_ARCH_LIST=';'.join(gpus))
    return build


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    parser.add_argument('--shared-dir', default=os.environ.get(
        'MMFCA_WHEELS_DIR', osp.join(root, '..', 'shared', 'wheels')))
    parser.add_argument('--cache-root', default=osp.join(
        os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')),
        'mmfca', 'wheels'))
    parser.add_argument('--facts', help='JSON file of facts instead of '
                        'probing this machine (for tests)')
    parser.add_argument('--print-facts', action='store_true')
    args = parser.parse_args(argv)
    if args.facts:
        with open(args.facts) as f:
            facts = json.load(f)
    else:
        facts = probe(args.shared_dir, args.cache_root)
    if args.print_facts:
        print(json.dumps(facts, indent=2))
        return 0
    try:
        decision = plan(facts)
    except PlanError as err:
        print(f'[setup] {err}', file=sys.stderr)
        return 2
    for key, value in decision.items():
        print(f'{key}={shlex.quote(value)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
