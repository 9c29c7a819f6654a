"""The set-up (tools/setup_env.sh and its Python half tools/setup_env.py):
where mmcv comes from, the C++ standard and the CUDA decision of its build
on made-up machine facts, the build with pip faked, its progress on a real
ninja, the lock (installed from with pip faked, written by ``make lock``
from this venv), the checks on this machine's real stack, and the stamp
that lets a second set-up skip the proof."""
import importlib.util
import os
import os.path as osp
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'setup_env.py')
_spec = importlib.util.spec_from_file_location('setup_env', SCRIPT)
se = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(se)

CU121_TORCH21 = ('https://download.openmmlab.com/mmcv/dist/cu121/torch2.1/'
                 'index.html')


def facts(tmp_path, **overrides):
    """A CPU machine with the README's torch 2.14.1 (a CUDA 13.0 build)."""
    base = dict(python_tag='cp311', platform='linux_x86_64',
                torch_version='2.14.1+cu130', torch_cuda='13.0',
                torch_hip=None, gpus=[], cache_root=str(tmp_path / 'cache'))
    base.update(overrides)
    return base


def oldest(tmp_path):
    """The oldest stack: Python 3.8, PyPI's torch 2.1.2 (CUDA 12.1)."""
    return facts(tmp_path, python_tag='cp38', torch_version='2.1.2+cu121',
                 torch_cuda='12.1')


# ------------------------------------------------------ where mmcv comes from
def test_cache_folder_names_python_torch_and_gpus(tmp_path):
    cache = str(tmp_path / 'cache')
    assert se.cache_dir(oldest(tmp_path)) == osp.join(
        cache, 'mmcv-2.1.0-cp38-torch2.1.2_cu121-cpu')
    assert se.cache_dir(facts(tmp_path, gpus=['8.0', '9.0'])) == osp.join(
        cache, 'mmcv-2.1.0-cp311-torch2.14.1_cu130-cu130-sm80_90')


def test_sources_are_the_cached_build_the_wheels_dir_then_an_index(
        tmp_path):
    readme, old = facts(tmp_path), oldest(tmp_path)
    # torch 2.14: no OpenMMLab wheel, nothing built yet: the build follows
    assert se.mmcv_sources(readme, {}) == []
    assert se.mmcv_sources(old, {}) == [CU121_TORCH21]
    wheels = str(tmp_path / 'wheels')
    assert se.mmcv_sources(old, dict(MMFCA_WHEELS_DIR=wheels)) == [
        wheels, CU121_TORCH21]
    # an earlier build for exactly this set-up comes first
    os.makedirs(se.cache_dir(old))
    open(osp.join(se.cache_dir(old), 'mmcv-2.1.0-cp38-cp38-linux_x86_64.whl'),
         'w').close()
    assert se.mmcv_sources(old, dict(MMFCA_WHEELS_DIR=wheels)) == [
        se.cache_dir(old), wheels, CU121_TORCH21]
    assert se.mmcv_sources(readme, {}) == []  # another torch: not its build
    # MMFCA_MMCV_INDEX replaces OpenMMLab's index or skips it
    mirror = 'https://mirror.example/mmcv/index.html'
    assert se.mmcv_sources(readme, dict(MMFCA_MMCV_INDEX=mirror)) == [mirror]
    assert se.mmcv_sources(old, dict(MMFCA_MMCV_INDEX='none')) == [
        se.cache_dir(old)]


@pytest.mark.parametrize('torch_version,cuda,extra,url', [
    ('2.1.2+cu121', '12.1', {}, CU121_TORCH21),
    ('2.0.1+cu117', '11.7', {},
     CU121_TORCH21.replace('cu121', 'cu117').replace('2.1', '2.0')),
    ('2.1.2+cpu', None, {}, CU121_TORCH21.replace('cu121', 'cpu')),
    ('2.1.2+cu124', '12.4', {}, None),  # no such flavour published
    ('2.14.1+cu130', '13.0', {}, None),
    ('2.1.2', '12.1', dict(platform='linux_aarch64'), None),
    ('2.1.2+rocm5.6', None, dict(torch_hip='5.6'), None),
])
def test_openmmlab_index_where_it_has_this_torch_and_cuda(
        tmp_path, torch_version, cuda, extra, url):
    assert se.openmmlab_index(facts(
        tmp_path, torch_version=torch_version, torch_cuda=cuda,
        **extra)) == url


@pytest.mark.parametrize('variable,value,message', [
    ('MMFCA_STACK', 'newest',
     'unknown MMFCA_STACK=newest; allowed: readme, oldest'),
    ('MMFCA_MMCV_INDEX', 'download.openmmlab.com',
     'MMFCA_MMCV_INDEX=download.openmmlab.com is neither "none" nor a URL '
     '(http://, https:// or file://); unset it to use OpenMMLab\'s index'),
    ('MMFCA_WHEELS_DIR', '/no/such/folder',
     'MMFCA_WHEELS_DIR=/no/such/folder is not a folder; set it to a folder '
     'of prebuilt mmcv wheels, or unset it'),
    ('MMCV_BUILD_JOBS', '0', 'MMCV_BUILD_JOBS=0 is not a positive whole '
     'number'),
])
def test_bad_options_stop_the_set_up_before_it_starts(
        tmp_path, variable, value, message):
    venv = tmp_path / 'venv'
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('MMFCA_', 'MMCV_'))}
    env.update(MMFCA_VENV=str(venv), **{variable: value})
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', 'setup_env.sh')],
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert (proc.returncode, proc.stderr) == (2, f'[setup] {message}\n')
    assert not venv.exists()


def test_requirements_pin_each_stack_and_the_helpers_mmcv():
    from packaging.requirements import Requirement
    pins = {}
    for stack in ('readme', 'oldest'):
        with open(osp.join(REPO, 'requirements', f'{stack}.txt')) as f:
            lines = [line.split('#')[0].strip() for line in f]
        pins[stack] = {r.name: r.specifier
                       for r in map(Requirement, filter(None, lines))}
    assert str(pins['readme']['torch']) == '==2.14.1'
    assert str(pins['oldest']['torch']) == '==2.1.2'
    assert str(pins['oldest']['numpy']) == '<2'
    assert 'numpy' not in pins['readme']
    for stack in pins.values():
        assert str(stack['mmcv']) == f'=={se.MMCV_VERSION}'
        assert str(stack['mmdeploy']) == '==1.3.1'
        # pkg_resources for mmcv's setup.py; PEP 660 for mmfca's -e
        assert [v in stack['setuptools'] for v in ('56.0.0', '80.9', '81')
                ] == [False, True, False]


def read_lock(path):
    """The ``name==version`` lines of a lock (its header skipped)."""
    with open(path) as f:
        return [line.strip() for line in f if not line.startswith('#')]


@pytest.mark.parametrize('stack', ['readme', 'oldest'])
def test_each_lock_pins_exactly_what_its_stack_file_allows(stack):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    lock = read_lock(osp.join(REPO, 'requirements', f'{stack}.lock'))
    pins = [Requirement(line) for line in lock]
    assert all(len(r.specifier) == 1 and str(r.specifier).startswith('==')
               and not r.marker for r in pins), lock
    locked = {canonicalize_name(r.name): str(r.specifier)[2:] for r in pins}
    assert len(locked) == len(lock) > 50  # everything, once
    # mmcv by version (the set-up finds or builds its wheel), mmdeploy
    # (installed without its pins), the build tools; neither pip (the
    # venv's own) nor the editable mmfca
    assert (locked['mmcv'], locked['mmdeploy']) == (se.MMCV_VERSION, '1.3.1')
    assert {'setuptools', 'wheel', 'ninja'} <= set(locked)
    assert not {'pip', 'mmfca'} & set(locked)
    with open(osp.join(REPO, 'requirements', f'{stack}.txt')) as f:
        wanted = [line.split('#')[0].strip() for line in f]
    for req in map(Requirement, filter(None, wanted)):
        assert req.specifier.contains(locked[canonicalize_name(req.name)])


def fake_venv(tmp_path):
    """A venv whose python records its arguments into calls.txt and passes
    all but ``proven``: the set-up runs through in milliseconds."""
    python = tmp_path / 'venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls.txt\n'
                      '[ "$3" != proven ]\n')
    python.chmod(0o755)
    return str(tmp_path / 'venv')


@pytest.mark.parametrize('locked', [True, False])
def test_set_up_installs_from_the_lock(tmp_path, locked):
    """Every pip install is given the stack file and the lock (pip -c), and
    the check compares the venv with the lock; without a lock (another
    platform, or the newest of everything before a refresh), the stack
    file alone."""
    root = tmp_path / 'root'
    shutil.copytree(osp.join(REPO, 'tools'), str(root / 'tools'),
                    ignore=lambda d, names: [n for n in names
                                             if not n.startswith('setup_env')])
    (root / 'requirements').mkdir()
    for name in ('readme.txt', 'readme.lock')[:2 if locked else 1]:
        shutil.copy(osp.join(REPO, 'requirements', name),
                    str(root / 'requirements'))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('MMFCA_', 'MMCV_'))}
    env.update(MMFCA_VENV=fake_venv(tmp_path))
    proc = subprocess.run(['bash', str(root / 'tools' / 'setup_env.sh')],
                          env=env, stdout=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 0
    pins = 'requirements/readme.' + ('lock' if locked else 'txt')
    assert f'build and import ({pins})' in proc.stdout
    txt, pins = f'{root}/requirements/readme.txt', f'{root}/{pins}'
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    installs = [c for c in calls if c.startswith('-m pip install')]
    assert [c.split()[-1] for c in installs] == ['ninja', f'{root}[tests,seg]',
                                                 'mmdeploy']
    assert all(c.startswith(f'-m pip install --no-input -c {txt} -c {pins} ')
               for c in installs)
    assert f'-I {root}/tools/setup_env.py check-versions {pins}' in calls


def test_make_lock_writes_the_venvs_freeze_then_proves_it(tmp_path):
    """``make lock`` (its set-up prerequisite skipped, the set-up after it
    faked) writes every distribution of this venv but pip and mmfca, at
    its version, under a header; the set-up then runs with it."""
    import sysconfig
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name
    shutil.copy(osp.join(REPO, 'Makefile'), str(tmp_path))
    (tmp_path / 'requirements').mkdir()
    (tmp_path / 'requirements' / 'readme.lock').write_text('torch==0.1\n')
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'setup_env.sh').write_text(
        'cp requirements/readme.lock set-up-saw.lock\n')
    subprocess.run(['make', '-s', '-o', 'install', 'lock',
                    f'PY={sys.executable}'], cwd=str(tmp_path), check=True)
    lock = (tmp_path / 'requirements' / 'readme.lock').read_text()
    assert (tmp_path / 'set-up-saw.lock').read_text() == lock
    assert lock.startswith('# Every version the set-up installs (pip -c)')
    site = sysconfig.get_paths()['purelib']
    installed = {canonicalize_name(d.metadata['Name']): d.version
                 for d in distributions(path=[site])}
    lines = read_lock(str(tmp_path / 'requirements' / 'readme.lock'))
    locked = {canonicalize_name(n): v for n, v in (
        line.split('==') for line in lines)}
    assert len(locked) == len(lines)
    assert locked == {n: v for n, v in installed.items()
                      if n not in ('pip', 'mmfca')}


# ---------------------------------------------------------- the source build
def write_header(folder, text):
    path = folder / 'torch' / 'csrc' / 'api' / 'include' / 'torch'
    path.mkdir(parents=True)
    (path / 'all.h').write_text(text)
    return str(folder)


def test_cxx_standard_is_the_one_torchs_headers_demand(tmp_path):
    guard = '#if !defined(_MSC_VER) && __cplusplus < {}L\n#error C++{}\n'
    assert se.cxx_std(write_header(
        tmp_path / 'a', guard.format(202002, 20))) == 'c++20'
    assert se.cxx_std(write_header(
        tmp_path / 'b', guard.format(201703, 17))) == 'c++17'
    assert se.cxx_std(write_header(tmp_path / 'c', '#pragma once\n')) == \
        'c++17'
    # this machine's torch: C++20 from torch 2.10 on
    import torch
    include = osp.join(osp.dirname(torch.__file__), 'include')
    release = tuple(int(n) for n in torch.__version__.split('.')[:2])
    assert se.cxx_std(include) == ('c++20' if release >= (2, 10)
                                   else 'c++17')


def test_cuda_ops_need_an_nvcc_of_torchs_cuda_major():
    assert se.cuda_decision('13.0', [], [('/cuda-12.1', '12.1')]) is None
    nvccs = [('/cuda-13.1', '13.1'), ('/cuda-13.0', '13.0')]
    assert se.cuda_decision('13.0', ['8.0', '9.0'], nvccs) == (
        '/cuda-13.0', '8.0;9.0')  # the same minor first
    assert se.cuda_decision('13.0', ['9.0'], nvccs[:1]) == (
        '/cuda-13.1', '9.0')  # else the same major
    # none fits: the error says what to install; from CUDA 13 on, the
    # exact pip command that puts nvcc into this venv
    with pytest.raises(se.SetupError) as err:
        se.cuda_decision('13.0', ['9.0'], [('/usr/local/cuda-12.8', '12.8')])
    assert str(err.value) == (
        'torch sees GPU(s) of compute capability 9.0, so mmcv\'s CUDA ops '
        'must be built, which needs nvcc and headers of CUDA 13.x (torch\'s '
        'is 13.0); found: /usr/local/cuda-12.8 (CUDA 12.8). Install the CUDA '
        f'toolkit 13.0 and set CUDA_HOME to it, or run {sys.executable} -m '
        'pip install nvidia-cuda-nvcc==13.0.* nvidia-cuda-runtime==13.0.*, '
        'then run the set-up again')
    with pytest.raises(se.SetupError, match=r'CUDA 12.x .*found: none\. '
                       r'Install the CUDA toolkit 12.1 and set CUDA_HOME to '
                       r'it, then run'):
        se.cuda_decision('12.1', ['8.6'], [])
    with pytest.raises(se.SetupError, match='is no CUDA build'):
        se.cuda_decision(None, ['9.4'], [])


def test_nvccs_are_found_with_their_cuda_and_headers(tmp_path, monkeypatch):
    for home, release in (('cuda', '13.0'), ('bare', '12.8')):
        nvcc = tmp_path / home / 'bin' / 'nvcc'
        nvcc.parent.mkdir(parents=True)
        nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release '
                        f'{release}, V{release}.48"\n')
        nvcc.chmod(0o755)
    (tmp_path / 'cuda' / 'include').mkdir()
    (tmp_path / 'cuda' / 'include' / 'cuda_runtime.h').write_text('')
    monkeypatch.setenv('CUDA_HOME', str(tmp_path / 'cuda'))
    monkeypatch.setenv('PATH', f'{tmp_path}/bare/bin:{os.environ["PATH"]}')
    found = se.find_nvccs()
    assert (str(tmp_path / 'cuda'), '13.0') in found
    assert all(h != str(tmp_path / 'bare') for h, _ in found)  # no headers


def test_build_switches_the_cxx_standard_and_caches_the_wheel(
        tmp_path, monkeypatch, capsys):
    """The build with pip faked: mmcv's setup.py on torch's C++ standard,
    ops without debug information, the wheel cached where the next set-up
    looks first; a failure prints the log's end and names the log."""
    src = tmp_path / 'mmcv-2.1.0'
    src.mkdir()
    (src / 'setup.py').write_text("cxx_args = ['-std=c++17']\n")
    with tarfile.open(str(tmp_path / 'mmcv-2.1.0.tar.gz'), 'w:gz') as tar:
        tar.add(str(src), 'mmcv-2.1.0')

    def pip_download(cmd, **kwargs):  # ... -d FOLDER mmcv==2.1.0
        shutil.copy(str(tmp_path / 'mmcv-2.1.0.tar.gz'), cmd[-2])
        return subprocess.CompletedProcess(cmd, 0)

    def pip_wheel(cmd, env, log_path):  # ... -w FOLDER SOURCE
        built.append(((pathlib.Path(cmd[-1]) / 'setup.py').read_text(), env))
        os.makedirs(cmd[-2])
        open(osp.join(cmd[-2], 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'),
             'w').close()
        return 0

    built, machine = [], facts(tmp_path, torch_include=write_header(
        tmp_path / 'torch', '#if __cplusplus < 202002L\n'))
    monkeypatch.setattr(se.subprocess, 'run', pip_download)
    monkeypatch.setattr(se, 'run_with_progress', pip_wheel)
    se.build_mmcv(machine, 3)
    (setup_py, env), = built
    assert setup_py == "cxx_args = ['-std=c++20']\n"
    assert (env['MMCV_WITH_OPS'], env['MAX_JOBS'], env['FORCE_CUDA'],
            env['CFLAGS'].split()[-1]) == ('1', '3', '0', '-g0')
    assert se.mmcv_sources(machine, {}) == [se.cache_dir(machine)]
    monkeypatch.setattr(se, 'run_with_progress', lambda cmd, env, log: (
        pathlib.Path(log).write_text('compiling\nerror: no\n') and 1))
    with pytest.raises(se.SetupError, match=r'mmcv build failed after 0 s; '
                       r'its last lines are above, all of it in .*cpu\.log'):
        se.build_mmcv(machine, 3)
    assert capsys.readouterr().out.endswith('compiling\nerror: no\n')
    assert se.mmcv_sources(machine, {}) == [se.cache_dir(machine)]


# ------------------------------------------------------- the build's progress
def test_progress_shows_units_elapsed_and_time_left():
    assert se.progress_text(2, 77, 75, 60) == (
        'mmcv build: 2/77 units compiled, 1 min 15 s elapsed')
    # 10 units in 100 s of compiling: 67 more take 670 s
    assert se.progress_text(10, 77, 130, 100) == (
        'mmcv build: 10/77 units compiled, 2 min 10 s elapsed, about '
        '11 min 10 s left')
    assert se.progress_text(77, 77, 900, 850) == (
        'mmcv build: 77/77 units compiled, 15 min 00 s elapsed')


def test_build_progress_reads_a_real_ninja(tmp_path, capsys):
    here = osp.join(osp.dirname(sys.executable), 'ninja')
    ninja = here if osp.exists(here) else shutil.which('ninja')
    assert ninja, 'the set-up installs ninja into the environment'
    (tmp_path / 'build.ninja').write_text(
        'rule copy\n  command = cp $in $out\n'
        + ''.join(f'build out{i}: copy in{i}\n' for i in range(3)))
    for i in range(3):
        (tmp_path / f'in{i}').write_text(str(i))
    log_path = str(tmp_path / 'build.log')
    assert se.run_with_progress([ninja, '-C', str(tmp_path), '-j', '1'],
                                dict(os.environ), log_path, every=0) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(',')[0] for line in shown] == [
        f'[setup] mmcv build: {i}/3 units compiled' for i in (1, 2, 3)]
    with open(log_path) as f:
        assert f.read().count('cp in') == 3
    assert (tmp_path / 'out2').read_text() == '2'
    code = se.run_with_progress(['sh', '-c', 'echo broken; exit 3'],
                                dict(os.environ), log_path)
    assert code == 3 and (tmp_path / 'build.log').read_text() == 'broken\n'


# ----------------------------------------------------------------- the checks
def test_verify_mmcv_runs_the_real_ops_here():
    pytest.importorskip('mmcv')
    proc = subprocess.run([sys.executable, SCRIPT, 'verify-mmcv'],
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr


def test_version_check_names_each_broken_pin(tmp_path):
    from importlib.metadata import version
    got = version('pytest')
    path = tmp_path / 'pins.txt'
    path.write_text(f'# pins\npytest=={got}  # this one\n\npytest<1\n'
                    'no-such-dist-mmfca==1.0\n')
    with pytest.raises(se.SetupError) as err:
        se.check_versions(str(path))
    assert str(err.value) == (
        f'an install moved the versions {path} pins: pytest<1 (installed: '
        f'{got}), no-such-dist-mmfca==1.0 (installed: None)')
    assert se.main(['check-versions', str(path)]) == 2
    assert se.main(['plan']) == 2  # neither a command


def test_version_check_names_a_package_that_drifted_from_the_lock(
        tmp_path, capsys):
    """A lock of this venv with one version moved (as a release would move
    it in an unlocked install): the check names the package, its installed
    and its locked version."""
    from importlib.metadata import version
    got, lock = version('packaging'), tmp_path / 'readme.lock'
    lock.write_text(f'# header\npackaging=={got}\npytest==1.0.1\n')
    assert se.main(['check-versions', str(lock)]) == 2
    assert capsys.readouterr().err == (
        f'[setup] an install moved the versions {lock} pins: pytest==1.0.1 '
        f'(installed: {version("pytest")})\n')
    lock.write_text(f'packaging=={got}\n')
    assert se.main(['check-versions', str(lock)]) == 0


def test_this_stack_is_the_one_its_lock_pins():
    """What CI proves of each stack after its set-up: each locked version
    is the installed one, and the lock holds every package that its own
    packages and mmfca (extras tests and seg) require here, but those
    mmdeploy declares (installed without them); what a user added by hand
    (nvcc from PyPI, say) is no part of it."""
    if not osp.isfile(se.STAMP):
        pytest.skip('an environment not set up by tools/setup_env.sh')
    from importlib.metadata import requires

    import torch
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    stack = 'oldest' if torch.__version__.startswith('2.1.') else 'readme'
    se.check_versions(osp.join(REPO, 'requirements', f'{stack}.txt'))
    lock = osp.join(REPO, 'requirements', f'{stack}.lock')
    se.check_versions(lock)  # each locked version is the installed one
    locked = {canonicalize_name(line.split('==')[0])
              for line in read_lock(lock)}
    unlocked = set()
    for name, extras in [('mmfca', ('', 'tests', 'seg'))] + [
            (n, ('',)) for n in locked - {'mmdeploy'}]:
        for req in map(Requirement, requires(name) or []):
            if (not req.marker or any(req.marker.evaluate({'extra': e})
                                      for e in extras)):
                unlocked |= {canonicalize_name(req.name)} - locked
    assert not unlocked, (f'required, not in {lock}: {sorted(unlocked)}; '
                          'prove them, then make lock (docs/installation.md)')


def test_mmdeploy_runs_without_its_declared_protobuf_pin():
    pytest.importorskip('mmdeploy', reason='set up by tools/setup_env.sh')
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement
    protobuf = [Requirement(r) for r in requires('mmdeploy')
                if r.startswith('protobuf')]
    assert protobuf and not protobuf[0].specifier.contains(
        version('protobuf'))  # the stack's protobuf, not the pinned one
    from mmdeploy.apis import torch2onnx  # noqa: F401
    from mmdeploy.backend.onnxruntime import ORTWrapper  # noqa: F401


# ------------------------------------------------------------------ the stamp
def test_stamp_key_changes_with_every_fact_it_records(tmp_path, monkeypatch):
    root, site, gpus = tmp_path / 'root', tmp_path / 'site', tmp_path / 'gpus'

    def write(name, text='edited'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    def key(stack='readme'):
        return se.stamp_key(str(root), stack, str(site), str(gpus))

    for name in ('tools/setup_env.sh', 'tools/setup_env.py', 'setup.py',
                 'setup.cfg', 'pyproject.toml', 'requirements/readme.txt',
                 'README.md'):
        write(f'root/{name}', name)
    write('site/torch-2.14.1.dist-info/RECORD', 'torch/a.py')
    gpus.mkdir()
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    first, seen = key(), set()
    edits = ['root/setup.cfg', 'root/tools/setup_env.sh',
             'root/requirements/readme.txt', 'root/requirements/oldest.txt',
             'root/requirements/readme.lock',
             'site/torch-2.14.1.dist-info/RECORD',  # another build
             'site/mmcv-2.1.0.dist-info/RECORD', 'gpus/0000:01:00.0']
    for name in edits:
        write(name)
        seen.add(key())
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '1')
    seen.add(key())
    assert first not in seen and len(seen) == len(edits) + 1
    assert key('oldest') not in seen | {first}
    # what no install or set-up file changes leaves the proof standing
    now = key()
    for name in ('root/README.md', 'site/__pycache__/six.cpython-311.pyc',
                 'site/six.cpython-311.pyc'):
        write(name)
    assert key() == now


def test_prove_stamps_the_stack_and_proven_holds_until_it_changes(
        tmp_path, monkeypatch):
    pytest.importorskip('mmdeploy', reason='set up by tools/setup_env.sh')
    with pytest.raises(se.SetupError, match=f'install this checkout '
                       rf'\(pip install -e {tmp_path}\)'):
        se.prove('readme', str(tmp_path))
    monkeypatch.setattr(se, 'STAMP', str(tmp_path / 'stamp.txt'))
    assert se.main(['proven', 'readme']) == 1
    assert se.main(['prove', 'readme']) == 0
    assert se.main(['proven', 'readme']) == 0
    assert se.main(['proven', 'oldest']) == 1
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', 'another GPU')
    assert se.main(['proven', 'readme']) == 1
