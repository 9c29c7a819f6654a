#!/usr/bin/env python
# Copyright (c) mmfca contributors. All rights reserved.
"""What pip cannot do for ``tools/setup_env.sh``, with the venv's Python
(standard library, >= 3.8): ``python -I tools/setup_env.py COMMAND [ARG]``
(:func:`main`)."""
import glob
import hashlib
import os
import os.path as osp
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time

MMCV_VERSION = '2.1.0'
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STAMP = osp.join(sys.prefix, 'mmfca-stack-proof.txt')
#: Where OpenMMLab publishes mmcv 2.1.0 for Linux x86_64 (mmcv's
#: docs/en/_static/version.json): torch major.minor -> CUDA flavours.
OPENMMLAB_MMCV_2_1_0 = {'2.0': ('cu117', 'cu118', 'cpu'),
                        '2.1': ('cu118', 'cu121', 'cpu')}
OPENMMLAB_INDEX = ('https://download.openmmlab.com/mmcv/dist/{flavour}/'
                   'torch{torch}/index.html')


class SetupError(RuntimeError):
    """The set-up cannot proceed; the message says what to provide."""


def log(msg, file=None):
    print(f'[setup] {msg}', file=file or sys.stdout, flush=True)


# ----------------------------------------------------- where mmcv comes from
def probe():
    """The facts of this interpreter and machine that decide on mmcv."""
    import torch
    gpus = sorted({'{}.{}'.format(*torch.cuda.get_device_capability(i))
                   for i in range(torch.cuda.device_count())}
                  ) if torch.cuda.is_available() else []
    return dict(
        python_tag=f'cp{sys.version_info[0]}{sys.version_info[1]}',
        platform=sysconfig.get_platform().replace('-', '_').replace('.', '_'),
        torch_version=torch.__version__, torch_cuda=torch.version.cuda,
        torch_hip=getattr(torch.version, 'hip', None), gpus=gpus,
        torch_include=osp.join(osp.dirname(torch.__file__), 'include'),
        cache_root=osp.join(os.environ.get(
            'XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'mmfca', 'wheels'))


def cache_dir(facts):
    """The folder of the wheel built for exactly these facts (a wheel's
    name does not say which torch or GPUs its ops were built for)."""
    flavour = 'cpu' if not facts['gpus'] else 'cu{}-sm{}'.format(
        facts['torch_cuda'].replace('.', ''),
        '_'.join(g.replace('.', '') for g in facts['gpus']))
    torch_version = facts['torch_version'].replace('+', '_')
    return osp.join(facts['cache_root'], f'mmcv-{MMCV_VERSION}-'
                    f'{facts["python_tag"]}-torch{torch_version}-{flavour}')


def openmmlab_index(facts):
    """OpenMMLab's find-links page of mmcv 2.1.0 for this torch (their
    wheels for torch 2.x.0 serve every 2.x.y) and CUDA (``cpu`` for a CPU
    build of torch), or None where they publish none."""
    if facts['platform'] != 'linux_x86_64' or facts['torch_hip']:
        return None
    torch_mm = '.'.join(facts['torch_version'].split('+')[0].split('.')[:2])
    cuda = facts['torch_cuda']
    flavour = 'cu' + cuda.replace('.', '') if cuda else 'cpu'
    if flavour not in OPENMMLAB_MMCV_2_1_0.get(torch_mm, ()):
        return None
    return OPENMMLAB_INDEX.format(flavour=flavour, torch=torch_mm)


def mmcv_sources(facts, env):
    """The find-links folders and pages to try, in order: this set-up's
    cached build, ``MMFCA_WHEELS_DIR``, ``MMFCA_MMCV_INDEX`` (a URL, or
    ``none``) else OpenMMLab's index (both checked by the shell script)."""
    cached = glob.glob(osp.join(cache_dir(facts), 'mmcv-*.whl'))
    index = env.get('MMFCA_MMCV_INDEX') or openmmlab_index(facts)
    return [s for s in [cache_dir(facts) if cached else None,
                        env.get('MMFCA_WHEELS_DIR'), index]
            if s and s != 'none']


# ---------------------------------------------------------- the source build
def cxx_std(torch_include):
    """The C++ standard torch's headers demand (torch >= 2.10: C++20)."""
    demands = re.search(r'__cplusplus < (\d+)L', pathlib.Path(
        torch_include, 'torch', 'csrc', 'api', 'include', 'torch',
        'all.h').read_text())
    year = int(demands.group(1)[2:4]) if demands else 17
    return f'c++{max(year, 17)}'


def find_nvccs():
    """(CUDA_HOME, CUDA version) of every nvcc with CUDA headers beside it:
    ``$CUDA_HOME``, ``$PATH``, ``/usr/local/cuda*``, PyPI's ``nvidia``."""
    import site
    homes = [os.environ.get(k, '') for k in ('CUDA_HOME', 'CUDA_PATH')]
    homes.append(osp.dirname(osp.dirname(shutil.which('nvcc') or '')))
    for pattern in ['/usr/local/cuda*'] + [osp.join(
            sp, 'nvidia', 'cu*') for sp in site.getsitepackages()]:
        homes += sorted(glob.glob(pattern))
    found = []
    for home in homes:
        nvcc = osp.join(home, 'bin', 'nvcc')
        if home and os.access(nvcc, os.X_OK) and osp.isfile(
                osp.join(home, 'include', 'cuda_runtime.h')):
            out = subprocess.run([nvcc, '--version'], stdout=subprocess.PIPE,
                                 universal_newlines=True).stdout
            release = re.search(r'release (\d+\.\d+)', out)
            if release and (home, release.group(1)) not in found:
                found.append((home, release.group(1)))
    return found


def cuda_decision(torch_cuda, gpus, nvccs):
    """How to build mmcv's ops: None (CPU only) where torch sees no GPU,
    else ``(CUDA_HOME, TORCH_CUDA_ARCH_LIST)`` with an nvcc of torch's CUDA
    (``nvccs``: (home, version); same major.minor first, else same major:
    torch refuses another). A CPU-only mmcv would fail at the first CUDA
    op: none fitting is an error saying what to install (from CUDA 13 on,
    PyPI's nvcc and headers share a root that :func:`find_nvccs` finds)."""
    if not gpus:
        return None
    if not torch_cuda:
        raise SetupError(f'torch sees GPU(s) ({", ".join(gpus)}) but is no '
                         'CUDA build; mmcv\'s GPU ops are built for CUDA')
    major = torch_cuda.split('.')[0]
    for fits in (torch_cuda, major):
        homes = [h for h, v in nvccs if fits in (v, v.split('.')[0])]
        if homes:
            return homes[0], ';'.join(gpus)
    pip = (f'{sys.executable} -m pip install nvidia-cuda-nvcc=={torch_cuda}.* '
           f'nvidia-cuda-runtime=={torch_cuda}.*')
    seen = ', '.join(f'{h} (CUDA {v})' for h, v in nvccs) or 'none'
    raise SetupError(
        f'torch sees GPU(s) of compute capability {", ".join(gpus)}, so '
        f'mmcv\'s CUDA ops must be built, which needs nvcc and headers of '
        f'CUDA {major}.x (torch\'s is {torch_cuda}); found: {seen}. Install '
        f'the CUDA toolkit {torch_cuda} and set CUDA_HOME to it'
        + (f', or run {pip}' if int(major) >= 13 else '')
        + ', then run the set-up again')


def format_duration(seconds):
    """``'42 s'`` or ``'3 min 05 s'``."""
    seconds = int(round(seconds))
    return (f'{seconds} s' if seconds < 60 else
            f'{seconds // 60} min {seconds % 60:02d} s')


def progress_text(done, total, elapsed, compiling):
    """The line after ``done`` of ``total`` units, ``elapsed`` seconds
    since the build started and ``compiling`` since its compiler started;
    with the time left at that pace once a twentieth is done."""
    text = (f'mmcv build: {done}/{total} units compiled, '
            f'{format_duration(elapsed)} elapsed')
    if max(3, total / 20) <= done < total:
        left = compiling / done * (total - done)
        text += f', about {format_duration(left)} left'
    return text


def run_with_progress(cmd, env, log_path, every=30):
    """Run a build, its output into ``log_path``; show its ninja units
    (``[k/N]``) as :func:`progress_text` every ``every`` seconds and at
    the last; its exit code."""
    start, compile_start, shown = time.monotonic(), None, -every
    with open(log_path, 'w') as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                universal_newlines=True)
        for line in proc.stdout:
            logf.write(line)
            now = time.monotonic()
            unit = re.match(r'\s*\[(\d+)/(\d+)\]', line)
            if compile_start is None and (unit or 'Compiling obj' in line):
                compile_start = now
            if unit and (now - shown >= every or unit[1] == unit[2]):
                shown = now
                log(progress_text(int(unit[1]), int(unit[2]), now - start,
                                  now - compile_start))
    return proc.wait()


def build_mmcv(facts, jobs):
    """Build mmcv from PyPI's source distribution into :func:`cache_dir`:
    ops with torch's C++ standard, CUDA ops where torch sees a GPU."""
    cuda = cuda_decision(facts['torch_cuda'], facts['gpus'],
                         find_nvccs() if facts['gpus'] else [])
    std, target = cxx_std(facts['torch_include']), cache_dir(facts)
    env = dict(os.environ, MMCV_WITH_OPS='1', MAX_JOBS=str(jobs),
               FORCE_CUDA='0', PYTHONUNBUFFERED='1',
               # after Python's own -g, which doubles the compilers' time
               CFLAGS=f'{os.environ.get("CFLAGS", "")} -g0'.lstrip())
    if cuda:
        env.update(FORCE_CUDA='1', CUDA_HOME=cuda[0],
                   TORCH_CUDA_ARCH_LIST=cuda[1])
    ops = (f'CUDA (CUDA_HOME={cuda[0]}, sm {cuda[1]}) and CPU' if cuda
           else 'CPU')
    log(f'building mmcv {MMCV_VERSION} from source: ops for {ops}, {std}, '
        f'{jobs} parallel jobs; once per machine (cached in {target}); its '
        f'output goes to {target}.log')
    with tempfile.TemporaryDirectory(prefix='mmcv-build-') as work:
        if subprocess.run([sys.executable, '-m', 'pip', 'download', '-q',
                           '--no-input', '--no-deps', '--no-binary', ':all:',
                           '-d', work, f'mmcv=={MMCV_VERSION}']).returncode:
            raise SetupError(f'could not download mmcv {MMCV_VERSION}\'s '
                             'source distribution (pip says why above)')
        sdist = osp.join(work, f'mmcv-{MMCV_VERSION}.tar.gz')
        with tarfile.open(sdist) as tar:
            tar.extractall(work, **({'filter': 'data'} if hasattr(
                tarfile, 'data_filter') else {}))
        # its setup.py's -std=c++17 comes after CFLAGS, so it is replaced
        setup_py = pathlib.Path(work, f'mmcv-{MMCV_VERSION}', 'setup.py')
        setup_py.write_text(setup_py.read_text().replace(
            '-std=c++17', f'-std={std}'))
        os.makedirs(facts['cache_root'], exist_ok=True)
        shutil.rmtree(target + '.part', ignore_errors=True)
        start = time.monotonic()
        code = run_with_progress(
            [sys.executable, '-m', 'pip', 'wheel', '-v', '--no-input',
             '--no-build-isolation', '--no-deps', '-w', target + '.part',
             str(setup_py.parent)], env, target + '.log')
    took = format_duration(time.monotonic() - start)
    if code != 0:
        log_lines = pathlib.Path(target + '.log').read_text(errors='replace')
        print('\n'.join(log_lines.splitlines()[-40:]))
        raise SetupError(f'the mmcv build failed after {took}; its last '
                         f'lines are above, all of it in {target}.log')
    shutil.rmtree(target, ignore_errors=True)
    os.rename(target + '.part', target)
    log(f'mmcv built in {took}, cached')


# ----------------------------------------------------------------- the proof
def verify_mmcv():
    """mmcv 2.1.0 runs nms and RoIAlign here, on the GPU too where torch
    sees one (a CPU-only mmcv fails at the first op on a CUDA tensor)."""
    import mmcv
    import torch
    from mmcv.ops import RoIAlign, nms
    assert mmcv.__version__ == MMCV_VERSION, mmcv.__version__
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # x + 4 y at the centres of a 2x2 box's bins: bilinear is exact
    feat = torch.arange(16.).view(1, 1, 4, 4)
    want = torch.tensor([[[[2.5, 3.5], [6.5, 7.5]]]])
    roi_align = RoIAlign((2, 2), 1.0, 1, aligned=False)
    for device in ['cpu'] + (['cuda'] if torch.cuda.is_available() else []):
        _, keep = nms(boxes.to(device), scores.to(device), 0.5)
        assert keep.tolist() == [0, 2], (device, keep)
        rois = torch.tensor([[0., 0., 0., 2., 2.]], device=device)
        pooled = roi_align(feat.to(device), rois).cpu()
        assert torch.equal(pooled, want), (device, pooled)


def check_versions(constraints):
    """Raise :class:`SetupError` naming each pin of a constraints file
    that the installed versions break."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement
    with open(constraints) as f:
        lines = [line.split('#')[0].strip() for line in f]
    moved = []
    for req in [Requirement(line) for line in lines if line]:
        try:
            got = version(req.name)
        except PackageNotFoundError:
            got = None
        if got is None or not req.specifier.contains(got, True):
            moved.append(f'{req} (installed: {got})')
    if moved:
        raise SetupError(f'an install moved the versions {constraints} pins: '
                         + ', '.join(moved))


def prove(stack, root=ROOT):
    """Import and run the whole stack, mmfca from ``root``; stamp the proof
    of ``stack`` in the venv."""
    import importlib.util
    from importlib.metadata import version
    spec = importlib.util.find_spec('mmfca')
    where = osp.dirname(osp.realpath(spec.origin)) if spec else None
    if where != osp.join(osp.realpath(root), 'mmfca'):
        raise SetupError(f'mmfca is imported from {where}, not from {root}: '
                         f'install this checkout (pip install -e {root})')
    verify_mmcv()
    for name in ('mmdet.models', 'mmpretrain.models', 'mmseg.models', 'mmfca',
                 'mmdeploy.apis.utils', 'mmdeploy.backend.onnxruntime'):
        importlib.import_module(name)  # MMDeploy: its export and ORT APIs
    for scope in ('mmdet', 'mmpretrain', 'mmseg'):
        models = importlib.import_module(f'{scope}.registry').MODELS
        for name in ('FcaNet', 'MultiSpectralAttention'):
            assert models.get(name) is not None, (scope, name)
    import torch
    summary = ', '.join(f'{d} {version(d)}' for d in (
        'torch', 'mmcv', 'mmdet', 'mmpretrain', 'mmsegmentation', 'mmfca',
        'mmdeploy', 'onnx', 'onnxruntime', 'protobuf')) + (
        '; mmcv\'s CUDA ops run' if torch.cuda.is_available() else '')
    pathlib.Path(STAMP).write_text('\n'.join([
        stamp_key(root, stack), summary, time.strftime('%Y-%m-%d %H:%M')]))
    log(f'stack OK: {summary}')


def stamp_key(root, stack, site=sysconfig.get_paths()['purelib'],
              gpus_dir='/proc/driver/nvidia/gpus', env=os.environ):
    """What a proof holds for: the set-up files and requirements of
    ``root``, the stack's name, this interpreter, every distribution of
    ``site`` (its RECORD hashes each installed file) and the visible GPUs
    (read without torch)."""
    parts = [root, stack, sys.version, sys.executable, sys.prefix,
             str(env.get('CUDA_VISIBLE_DEVICES'))]
    parts += sorted(os.listdir(gpus_dir)) if osp.isdir(gpus_dir) else []
    for pattern in [osp.join(root, name) for name in (
            'tools/setup_env.*', 'setup.*', 'pyproject.toml',
            'requirements/*')] + [osp.join(site, '*.dist-info/RECORD')]:
        for path in sorted(glob.glob(pattern)):
            parts += [path, hashlib.sha256(
                pathlib.Path(path).read_bytes()).hexdigest()]
    return hashlib.sha256('\0'.join(parts).encode()).hexdigest()


def proven(stack):
    """None (exit 0) while the stamp holds for this stack, else 1."""
    try:
        key, summary, date = pathlib.Path(STAMP).read_text().split('\n')
    except (OSError, ValueError):
        return 1
    if key != stamp_key(ROOT, stack):
        return 1
    log(f'stack unchanged since its proof of {date} ({summary}); '
        f'delete {STAMP} to prove it again')


def main(argv):
    """Run ``COMMAND [ARG]``: ``mmcv-sources`` prints the find-links folders
    and pages to try for an mmcv wheel, one a line; ``build-mmcv JOBS``
    builds one into the cache; ``verify-mmcv``, ``check-versions FILE``,
    ``prove STACK`` (which stamps the proof) and ``proven STACK`` exit 0
    when it holds. The exit code (2: a :class:`SetupError`)."""
    commands = {
        'mmcv-sources': lambda: print(*mmcv_sources(probe(), os.environ),
                                      sep='\n'),
        'build-mmcv': lambda jobs: build_mmcv(probe(), int(jobs)),
        'verify-mmcv': verify_mmcv, 'check-versions': check_versions,
        'prove': prove, 'proven': proven}
    try:
        if not argv or argv[0] not in commands:
            raise SetupError(f'unknown command {argv[0] if argv else ""!r}'
                             f'; allowed: {", ".join(commands)}')
        return commands[argv[0]](*argv[1:]) or 0
    except SetupError as err:
        log(err, sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
