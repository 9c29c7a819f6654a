#!/usr/bin/env python
# Copyright (c) mmfca contributors. All rights reserved.
"""The Python half of ``tools/setup_env.sh``: how to get mmcv 2.1.0 with
ops that fit this interpreter's torch, and the checks that prove the stack.

``tools/setup_env.sh`` runs it with the virtual environment's interpreter
(``python -I tools/setup_env.py COMMAND``; standard library only, Python
3.8 and newer):

* ``plan``: print the decision for this machine as JSON (``--facts FILE``
  decides on made-up facts, ``--print-facts`` shows the probed ones);
* ``install-mmcv``: carry the plan out, trying its steps in order until
  mmcv runs its ops here (:func:`plan` lists them):

  1. a wheel that an earlier build on this machine cached for exactly this
     Python, torch and CUDA set-up (``~/.cache/mmfca/wheels``);
  2. a wheel of the folder named by ``MMFCA_WHEELS_DIR`` (an explicit
     option; never on a machine where torch sees a GPU unless the wheel has
     CUDA ops);
  3. OpenMMLab's prebuilt wheels, where their index publishes mmcv 2.1.0
     for this torch and CUDA (:func:`openmmlab_index`; ``MMFCA_MMCV_INDEX``
     names another index or ``none``); an unreachable index fails within
     seconds;
  4. a source build with ``MMCV_WITH_OPS=1`` (CUDA ops too where torch sees
     a GPU, with an nvcc that matches torch's CUDA, installed from PyPI for
     CUDA 13 and newer when none is found), showing the compiled units out
     of the total and the elapsed time (:class:`BuildProgress`); the wheel
     is cached for the next fresh clone;

* ``have SPEC...``: exit 0 when every distribution is installed, at the
  version a spec names (``name==2.1.0``, ``name<81``, ``name>=0.10``);
* ``verify-mmcv``: exit 0 when mmcv 2.1.0 runs its ops here (on the GPU
  too where torch sees one);
* ``mmfca-from ROOT``: exit 0 when mmfca is installed from the checkout
  ``ROOT`` (without importing it: a stale or missing editable install is
  not masked by the checkout on the path);
* ``prove-stack``: import the whole stack and run its ops once, and
  import MMDeploy's export and ONNX Runtime APIs (:func:`verify_deploy`);
* ``proven``: exit 0 when the stamp that ``prove-stack --stack NAME``
  wrote into the environment matches the stack as it is now. A stamp
  records a hash of the set-up scripts, mmfca's packaging files, the
  interpreter, every installed distribution (name, version and its RECORD,
  which holds the hash of each installed file) and the visible GPUs; while
  it matches, a second set-up skips the slow proof.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import os.path as osp
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile

MMCV_VERSION = '2.1.0'
#: Installed without its declared dependencies (tools/setup_env.sh).
MMDEPLOY_VERSION = '1.3.1'
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The first CUDA whose PyPI packages put nvcc, headers and runtime under
#: one root that can serve as CUDA_HOME.
PIP_NVCC_MIN_CUDA = 13
#: Where OpenMMLab publishes mmcv 2.1.0 for Linux x86_64 (mmcv's
#: docs/en/_static/version.json): torch major.minor -> CUDA flavours. Their
#: index folders name torch by major.minor (``torch2.1``) and CUDA as
#: ``cu121`` or ``cpu``.
OPENMMLAB_MMCV_2_1_0 = {
    '2.0': ('cu117', 'cu118', 'cpu'),
    '2.1': ('cu118', 'cu121', 'cpu'),
}
OPENMMLAB_INDEX = ('https://download.openmmlab.com/mmcv/dist/{flavour}/'
                   'torch{torch}/index.html')
#: pip's limits when asking an index: a reachable one answers in well under
#: 5 s; an unreachable one must not hold the set-up up.
INDEX_PIP_OPTIONS = ('--timeout', '5', '--retries', '0')
#: CPU minutes of the compilers in a source build of mmcv 2.1.0's CPU ops
#: (77 units, no debug information), by the torch (major, minor) it builds
#: against, measured on fresh clones: torch 2.1 26 min 55 s (Python 3.8,
#: gcc 12), torch 2.14 26 min 31 s (Python 3.11, C++20).
BUILD_CPU_MINUTES = {(2, 1): 27, (2, 14): 27}
#: The part of a build that runs on one core (setup.py, the link of
#: ``_ext``, packing the wheel), in minutes.
SERIAL_BUILD_MINUTES = 1
STAMP_NAME = 'mmfca-stack-proof.json'
#: What :func:`carry_out` says it tries next.
NEXT = {'wheel': 'the next wheel', 'index': 'a prebuilt wheel',
        'build': 'the source build', 'pip-nvcc': 'nvcc from PyPI',
        'fail': 'nothing else'}
#: The files whose content defines how the stack is set up.
STAMPED_FILES = ('tools/setup_env.sh', 'tools/setup_env.py', 'setup.py',
                 'setup.cfg', 'pyproject.toml')


class PlanError(RuntimeError):
    """The set-up cannot proceed; the message says what to provide."""


def log(msg):
    print(f'[setup] {msg}', flush=True)


# --------------------------------------------------------------- the facts
def wheel_has_cuda_ops(path):
    """Whether an mmcv wheel's compiled ops link torch's CUDA library."""
    with zipfile.ZipFile(path) as whl:
        libs = [n for n in whl.namelist() if re.match(r'mmcv/_ext.*\.so$', n)]
        return any(b'c10_cuda' in whl.read(n) for n in libs)


def list_wheels(folder, python_tag):
    """The mmcv wheels for ``python_tag`` in ``folder``, with whether each
    has CUDA ops; an error naming the folder when it is not one."""
    if not osp.isdir(folder):
        raise PlanError(f'MMFCA_WHEELS_DIR={folder} is not a folder; set it '
                        'to a folder of prebuilt mmcv wheels, or unset it')
    pattern = f'mmcv-{MMCV_VERSION}-{python_tag}-{python_tag}-*.whl'
    return [dict(path=p, cuda_ops=wheel_has_cuda_ops(p))
            for p in sorted(glob.glob(osp.join(folder, pattern)))]


def nvcc_version(nvcc):
    """``'13.0'`` from ``nvcc --version``, or None if it does not run."""
    try:
        out = subprocess.run([nvcc, '--version'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True,
                             timeout=60).stdout
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


def default_cache_root():
    return osp.join(
        os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')),
        'mmfca', 'wheels')


def probe(cache_root=None, env=None, pip_nvcc_tried=False):
    """The facts :func:`plan` decides on, read off this interpreter, this
    machine and the environment variables ``env`` (default: os.environ)."""
    import torch
    env = os.environ if env is None else env
    gpus = []
    if torch.cuda.is_available():
        gpus = sorted({'{}.{}'.format(*torch.cuda.get_device_capability(i))
                       for i in range(torch.cuda.device_count())})
    header = osp.join(osp.dirname(torch.__file__), 'include', 'torch', 'csrc',
                      'api', 'include', 'torch', 'all.h')
    with open(header) as f:
        cxx20 = '__cplusplus < 202002L' in f.read()
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    facts = dict(
        python_tag=tag,
        platform=sysconfig.get_platform().replace('-', '_').replace('.', '_'),
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        torch_hip=getattr(torch.version, 'hip', None),
        gpu_capabilities=gpus,
        cxx20_required=cxx20,
        nvccs=find_nvccs() if gpus else [],
        wheels_dir_wheels=(list_wheels(env['MMFCA_WHEELS_DIR'], tag)
                           if env.get('MMFCA_WHEELS_DIR') else []),
        mmcv_index=env.get('MMFCA_MMCV_INDEX') or None,
        cache_root=cache_root or default_cache_root(),
        pip_nvcc_tried=pip_nvcc_tried)
    facts['cached_wheels'] = sorted(
        glob.glob(osp.join(cache_dir(facts), 'mmcv-*.whl')))
    return facts


# ------------------------------------------------------------ the decision
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


def torch_major_minor(torch_version):
    """``(2, 1)`` from ``'2.1.2+cu121'``."""
    major, minor = torch_version.split('+')[0].split('.')[:2]
    return int(major), int(minor)


def openmmlab_index(facts):
    """The find-links page of OpenMMLab's prebuilt mmcv 2.1.0 for this
    torch and CUDA, or None where they publish none (any torch other than
    2.0.x/2.1.x, a CUDA they did not build for, ROCm, not Linux x86_64).

    mmcv's wheels for torch 2.x.0 serve every 2.x.y; torch's CUDA decides
    the flavour (a ``cu121`` wheel also runs on a machine without GPU, as
    such a torch does), a CPU-only torch takes ``cpu``.
    """
    if facts['platform'] != 'linux_x86_64' or facts.get('torch_hip'):
        return None
    major, minor = torch_major_minor(facts['torch_version'])
    torch_mm = f'{major}.{minor}'
    cuda = facts['torch_cuda']
    flavour = 'cu' + cuda.replace('.', '') if cuda else 'cpu'
    if flavour not in OPENMMLAB_MMCV_2_1_0.get(torch_mm, ()):
        return None
    return OPENMMLAB_INDEX.format(flavour=flavour, torch=torch_mm)


def build_step(facts):
    """The source build for these facts: a ``build`` step, a ``pip-nvcc``
    step (torch sees a GPU, no matching nvcc, PyPI has one for this CUDA)
    or a ``fail`` step saying what to install."""
    gpus = facts['gpu_capabilities']
    build = dict(source='build', with_cuda=False,
                 cxx_std='c++20' if facts['cxx20_required'] else 'c++17',
                 cache_dir=cache_dir(facts))
    if not gpus:
        return build
    cuda = facts['torch_cuda']
    nvcc = pick_nvcc(facts)
    if nvcc is not None:
        build.update(with_cuda=True, cuda_home=nvcc['home'],
                     arch_list=';'.join(gpus))
        return build
    major = int(cuda.split('.')[0]) if cuda else 0
    if major >= PIP_NVCC_MIN_CUDA and not facts['pip_nvcc_tried']:
        return dict(source='pip-nvcc', packages=[
            f'nvidia-cuda-nvcc=={cuda}.*', f'nvidia-cuda-runtime=={cuda}.*'])
    seen = ', '.join(f'{n["path"]} (CUDA {n["version"]}'
                     f'{"" if n["headers"] else ", no headers"})'
                     for n in facts['nvccs']) or 'none'
    return dict(source='fail', message=(
        f'torch {facts["torch_version"]} sees GPU(s) of compute capability '
        f'{", ".join(gpus)}, so mmcv\'s CUDA ops must be built, which needs '
        f'nvcc and headers of CUDA {cuda} (the major version must match '
        f'torch\'s). Found: {seen}. Install the CUDA toolkit {cuda} and set '
        'CUDA_HOME to it'
        + (f', or pip install "nvidia-cuda-nvcc=={cuda}.*" '
           f'"nvidia-cuda-runtime=={cuda}.*" into this environment'
           if major >= PIP_NVCC_MIN_CUDA else '') + ', then run the set-up '
        'again. (A CPU-only mmcv would fail at the first CUDA op, so it is '
        'not installed.)'))


def pick_nvcc(facts):
    """The nvcc whose CUDA matches torch's: the same major.minor first, else
    the same major (torch's extension builder refuses another major)."""
    want = facts['torch_cuda']
    if not want:
        return None
    usable = [n for n in facts['nvccs'] if n['version'] and n['headers']]
    for same in (lambda v: v == want,
                 lambda v: v.split('.')[0] == want.split('.')[0]):
        for nvcc in usable:
            if same(nvcc['version']):
                return nvcc
    return None


def plan(facts):
    """The ways to get mmcv here, in the order to try them. Pure: every
    fact comes in ``facts`` (from :func:`probe`, or made up by the tests).

    Args:
        facts (dict): ``python_tag``, ``platform`` (``'linux_x86_64'``),
            ``torch_version``, ``torch_cuda`` (None for a CPU build of
            torch), ``torch_hip``, ``gpu_capabilities`` (e.g. ``['9.0']``;
            empty when torch sees no GPU), ``cxx20_required``, ``nvccs``
            (dicts with ``path``, ``home``, ``version``, ``headers``),
            ``cached_wheels`` (the wheels in :func:`cache_dir`),
            ``wheels_dir_wheels`` (dicts with ``path`` and ``cuda_ops``),
            ``mmcv_index`` (``MMFCA_MMCV_INDEX``: None, ``'none'`` or a
            URL), ``cache_root`` and ``pip_nvcc_tried``.

    Returns:
        list[dict]: Steps, each with a ``source``: ``wheel`` (``path``,
        ``origin``), ``index`` (``url``), then exactly one of ``build``
        (``with_cuda``, ``cxx_std``, ``cache_dir`` and for CUDA
        ``cuda_home`` and ``arch_list``), ``pip-nvcc`` (``packages``: then
        probe and plan again) or ``fail`` (``message``).
    """
    gpus = facts['gpu_capabilities']
    steps = [dict(source='wheel', path=p, origin='cache')
             for p in facts['cached_wheels'][:1]]
    steps += [dict(source='wheel', path=w['path'], origin='MMFCA_WHEELS_DIR')
              for w in facts['wheels_dir_wheels'] if w['cuda_ops'] or not gpus]
    index = facts['mmcv_index']
    if index is None:
        index = openmmlab_index(facts)
    elif index == 'none':
        index = None
    if index:
        steps.append(dict(source='index', url=index))
    steps.append(build_step(facts))
    return steps


def check_index_option(value):
    """``MMFCA_MMCV_INDEX``: unset, ``none`` or a URL."""
    url = re.match(r'(https?|file)://', value or '')
    if value and value != 'none' and not url:
        raise PlanError(
            f'MMFCA_MMCV_INDEX={value} is neither "none" nor a URL '
            '(http://, https:// or file://); unset it to use OpenMMLab\'s '
            'index where it has a wheel for this torch')


# ------------------------------------------------------- the source build
def estimate_build_minutes(torch_version, jobs):
    """Minutes a CPU-ops source build takes on ``jobs`` otherwise idle
    cores, from the nearest measured torch (:data:`BUILD_CPU_MINUTES`);
    and that torch's (major, minor)."""
    want = torch_major_minor(torch_version)
    nearest = min(BUILD_CPU_MINUTES, key=lambda v: (
        abs(v[1] - want[1]) + 100 * abs(v[0] - want[0])))
    minutes = SERIAL_BUILD_MINUTES + BUILD_CPU_MINUTES[nearest] / max(1, jobs)
    return minutes, nearest


def use_cxx_std(setup_py, std):
    """mmcv 2.1.0's setup.py text compiling with ``-std=<std>`` (it says
    c++17; torch 2.14's headers refuse anything older than C++20)."""
    if std == 'c++17':
        return setup_py
    if '-std=c++17' not in setup_py:
        raise PlanError(f'mmcv {MMCV_VERSION}\'s setup.py has no -std=c++17 '
                        f'to switch to {std}')
    return setup_py.replace('-std=c++17', f'-std={std}')


def build_cflags(user_cflags):
    """CFLAGS of the build: the user's, then ``-g0``. Python's own build
    flags (``-g``) reach every compiler call; debug information doubles the
    compilers' CPU time on mmcv's units (measured: 46 s against 20 s for
    ``group_points.cpp`` with torch 2.1) and is of no use in the wheel."""
    return ' '.join(filter(None, [user_cflags, '-g0']))


def format_duration(seconds):
    """``'42 s'``, ``'3 min 05 s'`` or ``'1 h 07 min'``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds // 60 % 60:02d} min'


class BuildProgress:
    """What a user sees of a build whose output goes to a log: the units
    compiled out of the total (ninja's ``[k/N]`` lines), the elapsed time
    and, once a twentieth of the units is done, the time left at the rate
    since compiling started; then the link and the wheel.

    Args:
        clock (callable): Seconds, monotonic (``time.monotonic``).
        live (bool): Rewrite one line in place at every unit (a terminal);
            else a new line at every tenth of the units and at least every
            ``heartbeat`` seconds.
        heartbeat (float): The longest silence, in seconds.

    :meth:`feed` takes each line of the build's output (pip -v indents it)
    and returns the text to show, or None.
    """
    UNIT = re.compile(r'^\s*\[(\d+)/(\d+)\]')

    def __init__(self, clock=time.monotonic, live=False, heartbeat=120):
        self.clock = clock
        self.live = live
        self.heartbeat = heartbeat
        self.start = clock()
        self.last_shown = self.start
        self.done = self.total = 0
        self.compile_start = None
        self.shown_tenth = 0
        self.stage = 'preparing'

    def elapsed(self):
        return self.clock() - self.start

    def status(self):
        elapsed = self.elapsed()
        if self.stage == 'compiling':
            text = (f'mmcv build: {self.done}/{self.total} units compiled, '
                    f'{format_duration(elapsed)} elapsed')
            if max(3, self.total / 20) <= self.done < self.total:
                rate = (self.clock() - self.compile_start) / self.done
                left = rate * (self.total - self.done)
                text += f', about {format_duration(left)} left'
            return text
        return f'mmcv build: {self.stage}, {format_duration(elapsed)} elapsed'

    def feed(self, line):
        match = self.UNIT.match(line)
        now = self.clock()
        show = False
        if self.compile_start is None and (
                match or line.strip() == 'Compiling objects...'):
            self.compile_start = now  # torch's ninja starts
        if match:
            self.done, self.total = int(match.group(1)), int(match.group(2))
            self.stage = 'compiling'
            tenth = self.done * 10 // max(1, self.total)
            show = self.live or tenth > self.shown_tenth
            self.shown_tenth = max(self.shown_tenth, tenth)
        elif self.stage == 'compiling' and self.done == self.total and (
                ' -shared ' in line):
            self.stage = f'linking ({self.total} units compiled)'
            show = True
        elif line.lstrip().startswith('Created wheel for mmcv'):
            self.stage = 'wheel created'
            show = True
        if not show and now - self.last_shown >= self.heartbeat:
            show = True
        if show:
            self.last_shown = now
            return self.status()
        return None


def run_with_progress(cmd, env, log_path, progress, out=None):
    """Run ``cmd``, its output (stdout and stderr) into ``log_path`` and
    through ``progress``; the return code. On a terminal the progress line
    is rewritten in place."""
    out = out or sys.stdout
    with open(log_path, 'w') as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                universal_newlines=True, bufsize=1)
        for line in proc.stdout:
            logf.write(line)
            logf.flush()
            text = progress.feed(line)
            if text is not None:
                if progress.live:
                    out.write(f'\r[setup] {text}\033[K')
                else:
                    out.write(f'[setup] {text}\n')
                out.flush()
        code = proc.wait()
    if progress.live:
        out.write('\n')
    return code


def children_cpu_seconds():
    """CPU seconds of the finished child processes (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tail(path, lines=40):
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def build_mmcv(step, facts, jobs, out=None):
    """Build mmcv from PyPI's source distribution as ``step`` says, with
    progress; the built wheel, copied into the step's cache folder."""
    out = out or sys.stdout
    minutes, measured = estimate_build_minutes(facts['torch_version'], jobs)
    ops = (f'CUDA (TORCH_CUDA_ARCH_LIST={step["arch_list"]}, CUDA_HOME='
           f'{step["cuda_home"]}) and CPU' if step['with_cuda'] else 'CPU')
    log(f'building mmcv {MMCV_VERSION} from source: ops for {ops}, '
        f'{step["cxx_std"]}, {jobs} parallel jobs')
    log(f'this takes about {math.ceil(minutes)} minutes with {jobs} parallel '
        f'jobs on idle cores ({BUILD_CPU_MINUTES[measured]} CPU-minutes of '
        f'compiling with torch {measured[0]}.{measured[1]}'
        + ('; the CUDA kernels come on top, not measured here'
           if step['with_cuda'] else '') + '); the progress below shows '
        'the real pace')
    log(f'it happens once per machine: the wheel is cached in '
        f'{step["cache_dir"]}')
    workdir = tempfile.mkdtemp(prefix='mmcv-build-')
    try:
        subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '-q', '--no-input',
             '--no-deps', '--no-binary', ':all:', '-d', workdir,
             f'mmcv=={MMCV_VERSION}'], check=True)
        with tarfile.open(osp.join(workdir,
                                   f'mmcv-{MMCV_VERSION}.tar.gz')) as tar:
            kwargs = ({'filter': 'data'} if hasattr(tarfile, 'data_filter')
                      else {})
            tar.extractall(workdir, **kwargs)
        src = osp.join(workdir, f'mmcv-{MMCV_VERSION}')
        with open(osp.join(src, 'setup.py')) as f:
            text = use_cxx_std(f.read(), step['cxx_std'])
        with open(osp.join(src, 'setup.py'), 'w') as f:
            f.write(text)
        env = dict(os.environ, MMCV_WITH_OPS='1', MAX_JOBS=str(jobs),
                   FORCE_CUDA='1' if step['with_cuda'] else '0',
                   CFLAGS=build_cflags(os.environ.get('CFLAGS')),
                   PYTHONUNBUFFERED='1')
        if step['with_cuda']:
            env.update(CUDA_HOME=step['cuda_home'],
                       TORCH_CUDA_ARCH_LIST=step['arch_list'])
        os.makedirs(osp.dirname(step['cache_dir']), exist_ok=True)
        log_path = step['cache_dir'] + '.log'
        log(f'the build\'s full output goes to {log_path}')
        dist = osp.join(workdir, 'dist')
        progress = BuildProgress(
            live=hasattr(out, 'isatty') and out.isatty())
        cpu_before = children_cpu_seconds()
        code = run_with_progress(
            [sys.executable, '-m', 'pip', 'wheel', '-v', '--no-input',
             '--no-build-isolation', '--no-deps', '-w', dist, src],
            env, log_path, progress, out)
        if code != 0:
            out.write(tail(log_path))
            raise PlanError(f'the mmcv build failed after '
                            f'{format_duration(progress.elapsed())}; its '
                            f'last lines are above, all of it in {log_path}')
        cpu = children_cpu_seconds() - cpu_before
        log(f'mmcv built in {format_duration(progress.elapsed())} (CPU time '
            f'of the compilers: {format_duration(cpu)})')
        # into the cache, renamed into place when complete
        part = step['cache_dir'] + '.part'
        shutil.rmtree(part, ignore_errors=True)
        shutil.copytree(dist, part)
        shutil.rmtree(step['cache_dir'], ignore_errors=True)
        os.rename(part, step['cache_dir'])
        wheel = sorted(glob.glob(osp.join(step['cache_dir'], 'mmcv-*.whl')))
        log(f'cached the built wheel as {wheel[0]}')
        return wheel[0]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------- the install
def pip_install(args, pins=()):
    cmd = [sys.executable, '-m', 'pip', 'install', '--no-input']
    return subprocess.run(cmd + list(pins) + list(args)).returncode == 0


def install_wheel(path, pins):
    """Install an mmcv wheel (replacing any mmcv), then its dependencies."""
    return (pip_install(['--force-reinstall', '--no-deps', path])
            and pip_install([path], pins))


def install_from_index(url, pins):
    """Install mmcv 2.1.0 from the find-links page ``url``: wheels only
    (never PyPI's source), failing within seconds when it is unreachable.
    Of pip's output only the wheel's name and the result are shown."""
    log(f'trying the prebuilt mmcv {MMCV_VERSION} of {url}')
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-vv', '--no-input',
         '--force-reinstall', '--no-deps', '--no-index', '--only-binary',
         ':all:', *INDEX_PIP_OPTIONS, '-f', url, f'mmcv=={MMCV_VERSION}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True)
    took = format_duration(time.monotonic() - start)
    if proc.returncode != 0:
        reason = ('it could not be reached' if 'Could not fetch URL' in
                  proc.stdout else 'it offers no mmcv wheel for this Python')
        log(f'no prebuilt mmcv from there ({reason}; {took})')
        return False
    for line in proc.stdout.splitlines():
        if line.strip().startswith(('Downloading', 'Processing',
                                    'Successfully installed')):
            print(line.strip())
    return pip_install([f'mmcv=={MMCV_VERSION}'], pins)


def mmcv_runs():
    """verify-mmcv, in a fresh interpreter (mmcv was just replaced)."""
    return subprocess.run(
        [sys.executable, '-I', osp.abspath(__file__), 'verify-mmcv'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def carry_out(steps, runners, verify, replan):
    """Try ``steps`` in order until one installs an mmcv that ``verify``
    accepts; the step that did. ``runners`` maps a source to a callable
    taking the step and returning whether it installed; ``replan`` gives
    the steps after a ``pip-nvcc`` step (an nvcc was installed)."""
    steps, tried = list(steps), []
    while steps:
        step = steps.pop(0)
        if step in tried:
            continue
        tried.append(step)
        if step['source'] == 'fail':
            raise PlanError(step['message'])
        if step['source'] == 'pip-nvcc':
            log('torch sees a GPU and no nvcc matches its CUDA: installing '
                + ' '.join(step['packages']) + ' from PyPI')
            if not runners['pip-nvcc'](step):
                raise PlanError('could not install '
                                + ' '.join(step['packages']))
            steps = replan()
            continue
        what = step.get('path') or step.get('url') or 'the source build'
        installed = runners[step['source']](step)
        if installed and verify():
            log(f'mmcv {MMCV_VERSION} from {what} runs its ops here')
            return step
        if step['source'] == 'build':
            raise PlanError(f'mmcv {MMCV_VERSION} built here does not run '
                            'its ops')
        if installed:
            log(f'mmcv from {what} does not run its ops here')
        log(f'next: {NEXT[steps[0]["source"]] if steps else "nothing"}')
    raise PlanError('no way to get mmcv worked')


def install_mmcv(pins, jobs):
    """Carry out this machine's plan (the ``install-mmcv`` command)."""
    check_index_option(os.environ.get('MMFCA_MMCV_INDEX'))
    facts = probe()
    built = {}

    def build(step):
        built['wheel'] = build_mmcv(step, facts, jobs)
        return install_wheel(built['wheel'], pins)

    def replan():
        return plan(probe(pip_nvcc_tried=True))

    runners = {
        'wheel': lambda step: install_wheel(step['path'], pins),
        'index': lambda step: install_from_index(step['url'], pins),
        'build': build,
        'pip-nvcc': lambda step: pip_install(step['packages'], pins),
    }
    return carry_out(plan(facts), runners, mmcv_runs, replan)


# --------------------------------------------------------------- the checks
def release(version):
    """``(2, 1, 2)`` from ``'2.1.2+cu121'`` or ``'80.9.0.post1'``."""
    numbers = re.match(r'\d+(\.\d+)*', version)
    return tuple(int(n) for n in numbers.group(0).split('.')) if numbers \
        else ()


def have(specs):
    """The specs that are not installed. A spec is ``name``, or ``name``
    with one of ``==`` (the exact version), ``<`` or ``>=`` (compared by
    release numbers: ``setuptools<81``)."""
    from importlib.metadata import PackageNotFoundError, version
    missing = []
    for spec in specs:
        name, op, want = re.match(r'([A-Za-z0-9_.\-]+)(==|<|>=)?(.*)$',
                                  spec).groups()
        try:
            got = version(name)
        except PackageNotFoundError:
            missing.append(spec)
            continue
        fits = {None: lambda: True,
                '==': lambda: got == want,
                '<': lambda: release(got) < release(want),
                '>=': lambda: release(got) >= release(want)}[op]
        if not fits():
            missing.append(f'{spec} (installed: {got})')
    return missing


def verify_mmcv():
    """mmcv 2.1.0 runs nms here, on the GPU too where torch sees one (a
    CPU-only mmcv fails at the first op on a CUDA tensor)."""
    import mmcv
    import torch
    from mmcv.ops import nms
    assert mmcv.__version__ == MMCV_VERSION, mmcv.__version__
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        _, keep = nms(boxes.to(device), scores.to(device), iou_threshold=0.5)
        assert keep.tolist() == [0, 2], (device, keep)


def verify_deploy():
    """mmdeploy 1.3.1 imports its export and ONNX Runtime APIs here (with
    the onnx, onnxruntime and protobuf of the stack, not the older ones it
    declares). Returns the versions, for the summary line."""
    from importlib.metadata import version

    import mmdeploy
    import onnx
    import onnxruntime
    from mmdeploy.apis import torch2onnx  # noqa: F401
    from mmdeploy.apis.utils import build_task_processor  # noqa: F401
    from mmdeploy.backend.onnxruntime import ORTWrapper  # noqa: F401
    assert mmdeploy.__version__ == MMDEPLOY_VERSION, mmdeploy.__version__
    protobuf = version('protobuf')
    return (f'mmdeploy {mmdeploy.__version__}, onnx {onnx.__version__}, '
            f'onnxruntime {onnxruntime.__version__}, protobuf {protobuf}')


def mmfca_location():
    """Where ``import mmfca`` would load from (a real path), without
    importing it; None when it is not installed."""
    import importlib.util
    spec = importlib.util.find_spec('mmfca')
    if spec is None or not spec.origin:
        return None
    return osp.dirname(osp.realpath(spec.origin))


def check_mmfca_from(root):
    """An error unless ``import mmfca`` loads ``root``'s package."""
    where, want = mmfca_location(), osp.join(osp.realpath(root), 'mmfca')
    if where != want:
        raise PlanError(f'mmfca is imported from {where}, not from {want}: '
                        f'install this checkout (pip install -e {root})')


def prove_stack(root):
    """Import the whole stack and run its ops once; the summary line."""
    if root is not None:
        check_mmfca_from(root)
    verify_mmcv()
    import mmcv
    import torch
    import mmdet.models
    import mmpretrain.models
    import mmseg.models  # noqa: F401
    import mmfca
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for reg in (DET, CLS, SEG):
        for name in ('FcaNet', 'MultiSpectralAttention'):
            assert reg.get(name) is not None, (reg.name, name)
    if torch.cuda.is_available():
        from mmcv.ops import RoIAlign
        feat = torch.arange(16.).view(1, 1, 4, 4)
        rois = torch.tensor([[0., 0., 0., 4., 4.]])
        roi_align = RoIAlign((2, 2), 1.0, 0, aligned=False)
        pooled = roi_align(feat.cuda(), rois.cuda()).cpu()
        assert torch.allclose(pooled, roi_align(feat, rois)), pooled
        log(f'mmcv CUDA ops OK on {torch.cuda.get_device_name(0)}')
    return (f'torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
            f'mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__},'
            f' mmseg {mmseg.__version__}, mmfca {mmfca.__version__}, '
            + verify_deploy())


# --------------------------------------------------------------- the stamp
def installed_distributions():
    """(name, version, hash of RECORD) of every installed distribution."""
    from importlib.metadata import distributions
    found = []
    for dist in distributions():
        record = dist.read_text('RECORD') or ''
        found.append((str(dist.metadata['Name']).lower(), dist.version,
                      hashlib.sha256(record.encode()).hexdigest()))
    return sorted(found)


def visible_gpus(env=None):
    """The NVIDIA GPUs the driver lists, and CUDA_VISIBLE_DEVICES: read
    without importing torch."""
    env = os.environ if env is None else env
    folder = '/proc/driver/nvidia/gpus'
    listed = sorted(os.listdir(folder)) if osp.isdir(folder) else []
    return dict(gpus=listed,
                cuda_visible_devices=env.get('CUDA_VISIBLE_DEVICES'))


def stamp_key(root, stack, distributions, gpus):
    """The hash a proof is stamped with: the set-up files of ``root``, the
    stack's name, this interpreter, ``distributions`` and ``gpus``."""
    files = {}
    for name in STAMPED_FILES:
        path = osp.join(root, name)
        if osp.isfile(path):
            with open(path, 'rb') as f:
                files[name] = hashlib.sha256(f.read()).hexdigest()
    facts = dict(root=root, stack=stack, files=files,
                 python=[sys.version, sys.executable, sys.prefix],
                 distributions=[list(d) for d in distributions], gpus=gpus)
    return hashlib.sha256(
        json.dumps(facts, sort_keys=True).encode()).hexdigest()


def stamp_matches(path, key):
    """The stamp at ``path`` when it records ``key``, else None."""
    try:
        with open(path) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    return stamp if stamp.get('key') == key else None


def write_stamp(path, key, summary):
    with open(path + '.part', 'w') as f:
        json.dump(dict(key=key, summary=summary,
                       proven=time.strftime('%Y-%m-%d %H:%M:%S')), f)
    os.replace(path + '.part', path)


# ------------------------------------------------------------ the commands
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command')
    sub.required = True
    p = sub.add_parser('plan', help='print the steps for this machine')
    p.add_argument('--facts', help='JSON file of facts instead of probing '
                   'this machine')
    p.add_argument('--print-facts', action='store_true')
    p = sub.add_parser('install-mmcv', help='carry the plan out')
    p.add_argument('--pin', action='append', default=[],
                   help='a requirement added to every pip install line')
    p.add_argument('--jobs', type=int, default=None,
                   help='parallel compile jobs of a source build (default: '
                   'MMCV_BUILD_JOBS, else the number of cores)')
    p = sub.add_parser('have', help='exit 0 when all are installed')
    p.add_argument('specs', nargs='+', metavar='NAME[{==,<,>=}VERSION]')
    sub.add_parser('verify-mmcv', help='exit 0 when mmcv runs its ops')
    p = sub.add_parser('mmfca-from', help='exit 0 when mmfca is installed '
                       'from ROOT (checked without importing it)')
    p.add_argument('root')
    p = sub.add_parser('prove-stack', help='import the stack, run its ops; '
                       'with --stack, stamp the proof')
    p.add_argument('--root', help='the checkout mmfca must come from')
    p.add_argument('--stack', help='the stack\'s name, to stamp the proof')
    p.add_argument('--stamp-file', default=osp.join(sys.prefix, STAMP_NAME))
    p = sub.add_parser('proven', help='exit 0 when the stamp of a proof '
                       'matches the stack as it is now')
    p.add_argument('--stack', required=True)
    p.add_argument('--stamp-file', default=osp.join(sys.prefix, STAMP_NAME))
    args = parser.parse_args(argv)

    try:
        if args.command == 'plan':
            if args.facts:
                with open(args.facts) as f:
                    facts = json.load(f)
            else:
                check_index_option(os.environ.get('MMFCA_MMCV_INDEX'))
                facts = probe()
            print(json.dumps(facts if args.print_facts else plan(facts),
                             indent=2))
        elif args.command == 'install-mmcv':
            jobs = args.jobs or os.environ.get('MMCV_BUILD_JOBS') or (
                os.cpu_count() or 1)
            if not str(jobs).isdigit() or int(jobs) < 1:
                raise PlanError(f'MMCV_BUILD_JOBS={jobs} is not a positive '
                                'whole number')
            install_mmcv(args.pin, int(jobs))
        elif args.command == 'have':
            missing = have(args.specs)
            if missing:
                print('missing: ' + ', '.join(missing), file=sys.stderr)
                return 1
        elif args.command == 'verify-mmcv':
            verify_mmcv()
        elif args.command == 'mmfca-from':
            check_mmfca_from(args.root)
        elif args.command == 'prove-stack':
            summary = prove_stack(args.root)
            if args.stack:
                write_stamp(args.stamp_file, stamp_key(
                    ROOT, args.stack, installed_distributions(),
                    visible_gpus()), summary)
            log('stack OK: ' + summary)
        elif args.command == 'proven':
            stamp = stamp_matches(args.stamp_file, stamp_key(
                ROOT, args.stack, installed_distributions(), visible_gpus()))
            if stamp is None:
                return 1
            log(f'stack unchanged since its proof of {stamp["proven"]} '
                f'({stamp["summary"]}); delete {args.stamp_file} to prove '
                'it again')
    except PlanError as err:
        print(f'[setup] {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
