"""The Python half of the set-up (tools/setup_env.py): the mmcv plan on
made-up machines (CPU, GPUs with and without a matching nvcc, a wheels
folder, earlier builds, OpenMMLab's published wheels), the fallback from an
unreachable index, the build's progress, the checks it runs on this
machine's real stack, and the stamp of a proven stack."""
import hashlib
import importlib.util
import io
import json
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'setup_env.py')
_spec = importlib.util.spec_from_file_location('setup_env', SCRIPT)
se = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(se)

CU121_TORCH21 = ('https://download.openmmlab.com/mmcv/dist/cu121/torch2.1/'
                 'index.html')


def make_wheel(path, cuda):
    """A stand-in mmcv wheel whose compiled ops link (or not) c10_cuda."""
    with zipfile.ZipFile(path, 'w') as whl:
        body = b'\x7fELF...libc10.so...' + (b'libc10_cuda.so' if cuda else b'')
        whl.writestr('mmcv/_ext.cpython-311-x86_64-linux-gnu.so', body)
        whl.writestr('mmcv/__init__.py', '')
    return str(path)


def facts(tmp_path, **overrides):
    """A CPU machine with the README's torch 2.14.1 (CUDA 13.0 build)."""
    base = dict(python_tag='cp311', platform='linux_x86_64',
                torch_version='2.14.1+cu130', torch_cuda='13.0',
                torch_hip=None, gpu_capabilities=[], cxx20_required=True,
                nvccs=[], cached_wheels=[], wheels_dir_wheels=[],
                mmcv_index=None, cache_root=str(tmp_path / 'cache'),
                pip_nvcc_tried=False)
    base.update(overrides)
    return base


def oldest(tmp_path, **overrides):
    """The oldest stack: Python 3.8, PyPI's torch 2.1.2 (a CUDA 12.1
    build), no GPU."""
    return facts(tmp_path, **dict(
        dict(python_tag='cp38', torch_version='2.1.2', torch_cuda='12.1',
             cxx20_required=False), **overrides))


def nvcc(home, version, headers=True):
    return dict(path=f'{home}/bin/nvcc', home=home, version=version,
                headers=headers)


def cpu_build(cache_dir, cxx_std):
    return dict(source='build', with_cuda=False, cxx_std=cxx_std,
                cache_dir=cache_dir)


# ------------------------------------------------------------ the decision
def test_wheel_cuda_ops_are_read_from_the_compiled_library(tmp_path):
    assert se.wheel_has_cuda_ops(make_wheel(tmp_path / 'g.whl', cuda=True))
    assert not se.wheel_has_cuda_ops(make_wheel(tmp_path / 'c.whl', False))


def test_wheels_dir_lists_mmcv_wheels_of_this_python_only(tmp_path):
    want = make_wheel(
        tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl', cuda=False)
    make_wheel(tmp_path / 'mmcv-2.1.0-cp38-cp38-linux_x86_64.whl', True)
    make_wheel(tmp_path / 'mmcv-2.2.0-cp311-cp311-linux_x86_64.whl', True)
    assert se.list_wheels(str(tmp_path), 'cp311') == [
        dict(path=want, cuda_ops=False)]
    with pytest.raises(se.PlanError, match='MMFCA_WHEELS_DIR=/no/such is '
                       'not a folder'):
        se.list_wheels('/no/such', 'cp311')


def test_readme_stack_on_a_cpu_machine_builds_without_a_wheels_dir(tmp_path):
    f = facts(tmp_path)
    assert se.plan(f) == [cpu_build(
        str(tmp_path / 'cache' / 'mmcv-2.1.0-cp311-torch2.14.1_cu130-cpu'),
        'c++20')]
    # an explicit wheels folder comes first, the build stays the fallback
    f['wheels_dir_wheels'] = [dict(path='/w/mmcv.whl', cuda_ops=False)]
    assert se.plan(f) == [
        dict(source='wheel', path='/w/mmcv.whl', origin='MMFCA_WHEELS_DIR'),
        cpu_build(se.cache_dir(f), 'c++20')]


def test_oldest_stack_tries_openmmlab_then_builds_cpu_ops(tmp_path):
    got = se.plan(oldest(tmp_path))
    assert got == [
        dict(source='index', url=CU121_TORCH21),
        cpu_build(str(tmp_path / 'cache' / 'mmcv-2.1.0-cp38-torch2.1.2-cpu'),
                  'c++17')]


@pytest.mark.parametrize('torch_version,cuda,platform_tag,url', [
    ('2.1.2', '12.1', 'linux_x86_64', 'cu121/torch2.1'),
    ('2.1.0+cu118', '11.8', 'linux_x86_64', 'cu118/torch2.1'),
    ('2.1.2+cpu', None, 'linux_x86_64', 'cpu/torch2.1'),
    ('2.0.1', '11.7', 'linux_x86_64', 'cu117/torch2.0'),
    ('2.0.0+cu118', '11.8', 'linux_x86_64', 'cu118/torch2.0'),
    ('2.0.1+cpu', None, 'linux_x86_64', 'cpu/torch2.0'),
    # CUDA builds OpenMMLab did not publish mmcv 2.1.0 for
    ('2.1.2+cu117', '11.7', 'linux_x86_64', None),
    ('2.0.1+cu121', '12.1', 'linux_x86_64', None),
    # newer torch: no mmcv 2.1.0 wheels at all
    ('2.2.0', '12.1', 'linux_x86_64', None),
    ('2.14.1+cu130', '13.0', 'linux_x86_64', None),
    ('2.14.1+cpu', None, 'linux_x86_64', None),
    # only Linux x86_64 wheels
    ('2.1.2', '12.1', 'linux_aarch64', None),
])
def test_openmmlab_index_for_torch_and_cuda(tmp_path, torch_version, cuda,
                                            platform_tag, url):
    f = facts(tmp_path, torch_version=torch_version, torch_cuda=cuda,
              platform=platform_tag)
    want = (None if url is None else
            f'https://download.openmmlab.com/mmcv/dist/{url}/index.html')
    assert se.openmmlab_index(f) == want
    sources = [step['source'] for step in se.plan(f)]
    assert sources == (['build'] if url is None else ['index', 'build'])


def test_rocm_torch_gets_no_openmmlab_index(tmp_path):
    f = oldest(tmp_path, torch_cuda=None, torch_hip='5.6')
    assert se.openmmlab_index(f) is None


def test_mmcv_index_option_replaces_or_skips_openmmlab(tmp_path):
    mirror = 'https://mirror.example/mmcv/cu121/torch2.1/index.html'
    assert se.plan(oldest(tmp_path, mmcv_index=mirror))[0] == dict(
        source='index', url=mirror)
    # also for a torch OpenMMLab has nothing for: the user knows the index
    assert se.plan(facts(tmp_path, mmcv_index=mirror))[0] == dict(
        source='index', url=mirror)
    assert [s['source'] for s in se.plan(oldest(
        tmp_path, mmcv_index='none'))] == ['build']
    se.check_index_option(None)
    se.check_index_option('none')
    se.check_index_option(mirror)
    with pytest.raises(se.PlanError, match='MMFCA_MMCV_INDEX=cu121 is '
                       'neither "none" nor a URL'):
        se.check_index_option('cu121')


def test_gpu_machine_never_takes_a_cpu_only_wheel(tmp_path):
    got = se.plan(facts(
        tmp_path, gpu_capabilities=['9.0'],
        wheels_dir_wheels=[dict(path='/s/mmcv.whl', cuda_ops=False)],
        nvccs=[nvcc('/usr/local/cuda-13.0', '13.0')]))
    assert got == [dict(
        source='build', with_cuda=True, cxx_std='c++20',
        cache_dir=str(tmp_path / 'cache' /
                      'mmcv-2.1.0-cp311-torch2.14.1_cu130-cu130-sm90'),
        cuda_home='/usr/local/cuda-13.0', arch_list='9.0')]
    # a wheel with CUDA ops is fine there
    got = se.plan(facts(tmp_path, gpu_capabilities=['9.0'], nvccs=[
        nvcc('/usr/local/cuda-13.0', '13.0')], wheels_dir_wheels=[
        dict(path='/s/mmcv-cuda.whl', cuda_ops=True)]))
    assert got[0] == dict(source='wheel', path='/s/mmcv-cuda.whl',
                          origin='MMFCA_WHEELS_DIR')
    assert got[1]['with_cuda'] is True


def test_nvcc_must_match_torch_cuda_major_and_prefers_the_minor(tmp_path):
    nvccs = [nvcc('/usr/local/cuda-12.4', '12.4'),
             nvcc('/opt/cuda-12.1-noheaders', '12.1', headers=False),
             nvcc('/usr/local/cuda-12.1', '12.1'),
             nvcc('/usr/local/cuda-11.8', '11.8')]
    got = se.plan(oldest(tmp_path, gpu_capabilities=['8.0', '8.6'],
                         nvccs=nvccs))
    assert got[0] == dict(source='index', url=CU121_TORCH21)
    assert got[1]['cuda_home'] == '/usr/local/cuda-12.1'
    assert got[1]['arch_list'] == '8.0;8.6'
    got = se.plan(oldest(tmp_path, gpu_capabilities=['8.0'],
                         nvccs=nvccs[:1] + nvccs[3:]))
    assert got[1]['cuda_home'] == '/usr/local/cuda-12.4'  # same major


def test_cuda_13_without_nvcc_installs_it_from_pypi_once(tmp_path):
    f = facts(tmp_path, gpu_capabilities=['9.0'],
              nvccs=[nvcc('/usr/local/cuda-12.8', '12.8')])
    assert se.plan(f) == [dict(source='pip-nvcc', packages=[
        'nvidia-cuda-nvcc==13.0.*', 'nvidia-cuda-runtime==13.0.*'])]
    f['pip_nvcc_tried'] = True
    (fail,) = se.plan(f)
    assert fail['source'] == 'fail'
    assert 'CUDA 13.0' in fail['message']
    assert '/usr/local/cuda-12.8/bin/nvcc (CUDA 12.8)' in fail['message']


def test_cuda_12_without_nvcc_tries_openmmlab_then_says_what_to_install(
        tmp_path):
    steps = se.plan(oldest(tmp_path, gpu_capabilities=['8.0']))
    assert [s['source'] for s in steps] == ['index', 'fail']
    msg = steps[1]['message']
    assert 'capability 8.0' in msg and 'CUDA toolkit 12.1' in msg
    assert 'CUDA_HOME' in msg and 'Found: none' in msg
    assert 'nvidia-cuda-nvcc' not in msg  # PyPI has no usable tree for 12


def test_a_cached_build_comes_first_and_its_folder_names_the_setup(
        tmp_path):
    f = oldest(tmp_path, cached_wheels=['/c/mmcv-2.1.0-cp38.whl'])
    assert se.plan(f) == [
        dict(source='wheel', path='/c/mmcv-2.1.0-cp38.whl', origin='cache'),
        dict(source='index', url=CU121_TORCH21),
        cpu_build(se.cache_dir(f), 'c++17')]
    # every fact that changes the build changes the folder
    folders = {se.cache_dir(oldest(tmp_path, **change)) for change in (
        {}, dict(python_tag='cp39'), dict(torch_version='2.1.1'),
        dict(gpu_capabilities=['9.0']),
        dict(gpu_capabilities=['8.0', '9.0']))}
    assert len(folders) == 5


def test_probe_lists_the_cache_of_this_setup_only(tmp_path):
    pytest.importorskip('torch')
    cache_root = str(tmp_path / 'cache')
    mine = se.cache_dir(se.probe(cache_root=cache_root, env={}))
    os.makedirs(mine)
    wheel = make_wheel(osp.join(mine, 'mmcv-2.1.0-x.whl'), cuda=False)
    other = mine.replace('-torch', '-torch9.9_')
    os.makedirs(other)
    make_wheel(osp.join(other, 'mmcv-2.1.0-x.whl'), cuda=False)
    assert se.probe(cache_root=cache_root, env={})['cached_wheels'] == [
        wheel]


def test_probe_reads_this_machine(tmp_path):
    torch = pytest.importorskip('torch')
    got = se.probe(cache_root=str(tmp_path), env={})
    assert got['torch_version'] == torch.__version__
    assert got['torch_cuda'] == torch.version.cuda
    assert got['python_tag'] == 'cp{}{}'.format(*sys.version_info[:2])
    machine = platform.machine().replace('-', '_')
    assert got['platform'] == f'{sys.platform}_{machine}'.replace(
        'linux2', 'linux')
    expected_gpus = sorted({
        '%d.%d' % torch.cuda.get_device_capability(i)
        for i in range(torch.cuda.device_count())
    }) if torch.cuda.is_available() else []
    assert got['gpu_capabilities'] == expected_gpus
    assert got['wheels_dir_wheels'] == [] and got['mmcv_index'] is None


def test_probe_reads_the_cxx_standard_torch_headers_require(tmp_path):
    """Told apart by the preprocessor: torch's headers stop a C++17 build
    with #error exactly when the probe says C++20 is required."""
    torch = pytest.importorskip('torch')
    cxx = shutil.which('g++') or shutil.which('c++')
    if cxx is None:
        pytest.skip('no C++ compiler to check the headers with')
    include = osp.join(osp.dirname(torch.__file__), 'include')
    proc = subprocess.run(
        [cxx, '-std=c++17', '-E', '-x', 'c++', '-o', os.devnull,
         '-I', include, '-I', osp.join(include, 'torch', 'csrc', 'api',
                                       'include'), '-'],
        input='#include <torch/all.h>\n', universal_newlines=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    refused = proc.returncode != 0 and 'C++20' in proc.stderr
    assert proc.returncode == 0 or refused, proc.stderr[-2000:]
    assert se.probe(cache_root=str(tmp_path), env={})[
        'cxx20_required'] is refused


def test_probe_reads_the_wheels_dir_option(tmp_path):
    pytest.importorskip('torch')
    tag = 'cp{}{}'.format(*sys.version_info[:2])
    wheel = make_wheel(
        tmp_path / f'mmcv-2.1.0-{tag}-{tag}-linux_x86_64.whl', cuda=True)
    got = se.probe(cache_root=str(tmp_path / 'cache'),
                   env=dict(MMFCA_WHEELS_DIR=str(tmp_path),
                            MMFCA_MMCV_INDEX='none'))
    assert got['wheels_dir_wheels'] == [dict(path=wheel, cuda_ops=True)]
    assert got['mmcv_index'] == 'none'


def test_plan_command_prints_the_steps_as_json(tmp_path):
    f = oldest(tmp_path, gpu_capabilities=['9.0'],
               nvccs=[nvcc('/c d', '12.1')])
    path = tmp_path / 'facts.json'
    path.write_text(json.dumps(f))
    out = subprocess.run([sys.executable, SCRIPT, 'plan', '--facts',
                          str(path)], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    assert json.loads(out) == se.plan(f)
    assert json.loads(out)[1]['cuda_home'] == '/c d'


# -------------------------------------------------------- carrying it out
def test_an_unreachable_index_is_reported_and_the_build_follows(
        tmp_path, capsys):
    """The real pip against an index that cannot resolve (.invalid), then
    the next step; the build itself is recorded, not run."""
    ran = []

    def build(step):
        ran.append(step)
        return True

    steps = [dict(source='index',
                  url='https://download.openmmlab.invalid/mmcv/dist/cu121/'
                      'torch2.1/index.html'),
             cpu_build(str(tmp_path / 'cache' / 'x'), 'c++17')]
    runners = dict(index=lambda s: se.install_from_index(s['url'], []),
                   build=build)
    got = se.carry_out(steps, runners, verify=lambda: True, replan=None)
    assert got == steps[1] and ran == [steps[1]]
    out = capsys.readouterr().out
    assert '[setup] no prebuilt mmcv from there (it could not be reached; ' \
        in out
    assert '[setup] next: the source build\n' in out


def test_carry_out_moves_on_when_an_install_does_not_run(tmp_path):
    calls = []
    steps = [dict(source='wheel', path='/a.whl', origin='cache'),
             dict(source='wheel', path='/b.whl', origin='MMFCA_WHEELS_DIR'),
             cpu_build('/c', 'c++17')]
    runners = dict(wheel=lambda s: calls.append(s['path']) or True,
                   build=lambda s: calls.append('build') or True)
    verdicts = iter([False, True])  # /a.whl installs but fails its ops
    assert se.carry_out(steps, runners, lambda: next(verdicts),
                        None) == steps[1]
    assert calls == ['/a.whl', '/b.whl']
    # a build that does not run its ops is an error, not a silent success
    with pytest.raises(se.PlanError, match='built here does not run'):
        se.carry_out(steps[2:], runners, lambda: False, None)


def test_carry_out_installs_nvcc_then_follows_the_new_plan():
    calls = []
    build = dict(source='build', with_cuda=True, cxx_std='c++20',
                 cache_dir='/c', cuda_home='/sp/nvidia/cu13', arch_list='9.0')
    runners = {'pip-nvcc': lambda s: calls.append(s['packages']) or True,
               'build': lambda s: calls.append('build') or True}
    got = se.carry_out([dict(source='pip-nvcc', packages=['nvcc'])], runners,
                       lambda: True, lambda: [build])
    assert got == build and calls == [['nvcc'], 'build']
    with pytest.raises(se.PlanError, match='^install the CUDA toolkit$'):
        se.carry_out([dict(source='fail',
                           message='install the CUDA toolkit')],
                     runners, lambda: True, None)


# ------------------------------------------------------- the source build
def test_build_estimate_divides_the_measured_cpu_time_among_the_jobs():
    assert se.estimate_build_minutes('2.1.2', 2) == (1 + 27 / 2, (2, 1))
    assert se.estimate_build_minutes('2.14.1+cu130', 2) == (
        1 + 27 / 2, (2, 14))
    assert se.estimate_build_minutes('2.14.1', 16) == (1 + 27 / 16, (2, 14))
    assert se.estimate_build_minutes('2.1.0', 1) == (1 + 27, (2, 1))
    # an unmeasured torch takes the nearest measured one
    assert se.estimate_build_minutes('2.5.0', 2)[1] == (2, 1)
    assert se.estimate_build_minutes('2.11.0', 4)[1] == (2, 14)


def test_cxx_standard_switch_of_mmcv_setup_py():
    text = "extra_compile_args = {'cxx': ['-std=c++17']}\n"
    assert se.use_cxx_std(text, 'c++17') == text
    assert se.use_cxx_std(text, 'c++20') == (
        "extra_compile_args = {'cxx': ['-std=c++20']}\n")
    with pytest.raises(se.PlanError, match=r'no -std=c\+\+17 to switch'):
        se.use_cxx_std('setup()\n', 'c++20')


def test_build_drops_debug_information_after_the_users_flags():
    assert se.build_cflags(None) == '-g0'
    assert se.build_cflags('') == '-g0'
    assert se.build_cflags('-march=native') == '-march=native -g0'


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_shows_units_elapsed_and_time_left_every_tenth():
    clock = Clock()
    progress = se.BuildProgress(clock=clock)
    clock.now += 50  # setup.py before the compilers start
    assert progress.feed('  Compiling objects...\n') is None
    shown = []
    for k in range(1, 21):
        clock.now += 10
        # as pip -v passes the build's output on: indented
        text = progress.feed(f'  [{k}/20] c++ -c u{k}.cpp -o u{k}.o\n')
        if text:
            shown.append((k, text))
    assert [k for k, _ in shown] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    # the time left: 14 units at the 10 s per unit since compiling started
    assert shown[:2] == [
        (2, 'mmcv build: 2/20 units compiled, 1 min 10 s elapsed'),
        (4, 'mmcv build: 4/20 units compiled, 1 min 30 s elapsed, about '
            '2 min 40 s left')]
    assert shown[2][1] == ('mmcv build: 6/20 units compiled, 1 min 50 s '
                           'elapsed, about 2 min 20 s left')
    assert shown[-1][1] == ('mmcv build: 20/20 units compiled, 4 min 10 s '
                            'elapsed')
    clock.now += 30
    assert progress.feed('  g++ -pthread -shared b/a.o -o _ext.so\n') == (
        'mmcv build: linking (20 units compiled), 4 min 40 s elapsed')
    assert progress.feed('copying build/lib/mmcv/_ext.so\n') is None
    assert progress.feed('  Created wheel for mmcv: filename=m.whl\n') == (
        'mmcv build: wheel created, 4 min 40 s elapsed')


def test_durations_read_as_seconds_minutes_or_hours():
    assert [se.format_duration(s) for s in (0, 59.4, 60, 3599, 3600, 4030)
            ] == ['0 s', '59 s', '1 min 00 s', '59 min 59 s', '1 h 00 min',
                  '1 h 07 min']


def test_progress_on_a_terminal_shows_every_unit_and_a_heartbeat_else():
    clock = Clock()
    live = se.BuildProgress(clock=clock, live=True)
    assert [bool(live.feed(f'[{k}/50] c++\n')) for k in (1, 2, 3)] == [
        True, True, True]
    quiet = se.BuildProgress(clock=clock, heartbeat=120)
    clock.now += 119
    assert quiet.feed('running build_ext\n') is None
    clock.now += 1
    assert quiet.feed('building mmcv._ext\n') == (
        'mmcv build: preparing, 2 min 00 s elapsed')
    assert quiet.feed('[1/50] c++\n') is None  # under a tenth, just shown


def ninja_binary():
    here = osp.join(osp.dirname(sys.executable), 'ninja')
    return here if osp.exists(here) else shutil.which('ninja')


def test_run_with_progress_reads_a_real_ninja_build(tmp_path):
    ninja = ninja_binary()
    assert ninja, 'the set-up installs ninja into the environment'
    (tmp_path / 'build.ninja').write_text(
        'rule copy\n  command = cp $in $out\n'
        + ''.join(f'build out{i}: copy in{i}\n' for i in range(3)))
    for i in range(3):
        (tmp_path / f'in{i}').write_text(str(i))
    out, log_path = io.StringIO(), str(tmp_path / 'build.log')
    code = se.run_with_progress([ninja, '-C', str(tmp_path), '-j', '1'],
                                dict(os.environ), log_path,
                                se.BuildProgress(), out)
    assert code == 0
    shown = out.getvalue().splitlines()
    assert shown[-1].startswith('[setup] mmcv build: 3/3 units compiled, ')
    assert len(shown) == 3  # 1/3, 2/3 and 3/3 each pass a tenth
    with open(log_path) as f:
        assert f.read().count('cp in') == 3
    assert (tmp_path / 'out2').read_text() == '2'


def test_a_failed_build_keeps_its_output_for_the_tail(tmp_path):
    log_path = str(tmp_path / 'build.log')
    code = se.run_with_progress(
        ['sh', '-c', 'for i in $(seq 1 50); do echo line$i; done; exit 3'],
        dict(os.environ), log_path, se.BuildProgress(), io.StringIO())
    assert code == 3
    assert se.tail(log_path, 2) == 'line49\nline50\n'


# --------------------------------------------------------------- the checks
def helper(*args, env=None, isolated=True):
    cmd = [sys.executable] + (['-I'] if isolated else []) + [SCRIPT]
    return subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=env)


def test_have_names_what_is_missing():
    from importlib.metadata import version
    got = version('pytest')
    major = int(got.split('.')[0])
    assert helper('have', 'pytest', f'pytest=={got}', f'pytest<{major + 1}',
                  f'pytest>={major}', f'pytest>={got}').returncode == 0
    proc = helper('have', 'pytest==0.0.1', 'no-such-dist-mmfca',
                  f'pytest<{major}', f'pytest>={major + 1}')
    assert proc.returncode == 1
    assert proc.stderr == (
        f'missing: pytest==0.0.1 (installed: {got}), no-such-dist-mmfca, '
        f'pytest<{major} (installed: {got}), pytest>={major + 1} '
        f'(installed: {got})\n')


def test_release_numbers_compare_as_numbers():
    assert se.release('80.9.0') < se.release('81')
    assert se.release('2.14.1+cu130') > se.release('2.9')
    assert se.release('0.10.7') >= se.release('0.10')
    assert se.release('0.9.1') < se.release('0.10')
    assert se.release('81.0.0.post1') == (81, 0, 0)


def test_verify_mmcv_runs_the_real_ops_here():
    pytest.importorskip('mmcv')
    proc = helper('verify-mmcv')
    assert proc.returncode == 0, proc.stderr


def test_verify_deploy_imports_mmdeploy_with_the_stacks_onnx():
    """mmdeploy 1.3.1's export and ONNX Runtime APIs import here, beside
    the onnx and protobuf of the stack: its declared pin (protobuf <=
    3.20.2) was not followed."""
    pytest.importorskip('mmdeploy', reason='set up by tools/setup_env.sh')
    from importlib.metadata import version

    import onnx
    import onnxruntime
    assert se.verify_deploy() == (
        f'mmdeploy 1.3.1, onnx {onnx.__version__}, onnxruntime '
        f'{onnxruntime.__version__}, protobuf {version("protobuf")}')
    assert se.release(version('protobuf')) > (3, 20, 2)


def test_the_shell_half_installs_the_mmdeploy_the_proof_expects():
    """Without its declared dependencies, at the version verify_deploy
    requires; the stack's own versions are checked after every install."""
    with open(osp.join(REPO, 'tools', 'setup_env.sh')) as f:
        script = f.read()
    assert f'MMDEPLOY_VERSION={se.MMDEPLOY_VERSION}\n' in script
    assert ('pip install --no-input --no-deps "mmdeploy==$MMDEPLOY_VERSION"'
            in script)
    after = script[script.index('--no-deps "mmdeploy=='):]
    assert 'an install moved the stack\'s versions' in after
    assert after.index('moved') < after.index('prove-stack')


def test_mmfca_from_tells_this_checkout_from_another(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    assert helper('mmfca-from', REPO, env=env, isolated=False,
                  ).returncode == 0
    other = str(tmp_path)
    message = (f'[setup] mmfca is imported from {osp.realpath(REPO)}/mmfca, '
               f'not from {osp.realpath(other)}/mmfca: install this '
               f'checkout (pip install -e {other})\n')
    for command in ('mmfca-from', 'prove-stack --root'):
        proc = helper(*command.split(), other, env=env, isolated=False)
        assert (proc.returncode, proc.stderr) == (2, message)


def test_prove_stack_stamps_the_proof_and_proven_matches_it(tmp_path):
    import mmcv
    import torch
    stamp = str(tmp_path / 'stamp.json')
    env = dict(os.environ, PYTHONPATH=REPO)
    assert helper('proven', '--stack', 'readme', '--stamp-file', stamp,
                  env=env, isolated=False).returncode == 1
    proc = helper('prove-stack', '--root', REPO, '--stack', 'readme',
                  '--stamp-file', stamp, env=env, isolated=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (f'torch {torch.__version__}, mmcv {mmcv.__version__} (ops)')
    assert f'[setup] stack OK: {summary}, mmdet ' in proc.stdout
    proc = helper('proven', '--stack', 'readme', '--stamp-file', stamp,
                  env=env, isolated=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('[setup] stack unchanged since its proof')
    assert summary in proc.stdout
    # another stack's name, or a GPU list that changed, is not proven
    assert helper('proven', '--stack', 'oldest', '--stamp-file', stamp,
                  env=env, isolated=False).returncode == 1
    assert helper('proven', '--stack', 'readme', '--stamp-file', stamp,
                  env=dict(env, CUDA_VISIBLE_DEVICES='7'),
                  isolated=False).returncode == 1


# --------------------------------------------------------------- the stamp
def test_stamp_key_changes_with_every_fact_it_records(tmp_path):
    for name in se.STAMPED_FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    dists = [('mmcv', '2.1.0', 'r1'), ('torch', '2.1.2', 'r2')]
    gpus = dict(gpus=[], cuda_visible_devices=None)
    root = str(tmp_path)
    key = se.stamp_key(root, 'oldest', dists, gpus)
    assert key == se.stamp_key(root, 'oldest', list(dists), dict(gpus))
    changed = {
        se.stamp_key(root, 'readme', dists, gpus),
        se.stamp_key(root, 'oldest', dists[:1], gpus),
        se.stamp_key(root, 'oldest', [('mmcv', '2.1.0', 'r1'),
                                      ('torch', '2.1.1', 'r2')], gpus),
        se.stamp_key(root, 'oldest', [('mmcv', '2.1.0', 'other build'),
                                      ('torch', '2.1.2', 'r2')], gpus),
        se.stamp_key(root, 'oldest', dists,
                     dict(gpus=['0000:01:00.0'], cuda_visible_devices=None)),
    }
    for name in se.STAMPED_FILES:
        path = tmp_path / name
        path.write_text(name + ' edited')
        changed.add(se.stamp_key(root, 'oldest', dists, gpus))
        path.write_text(name)
    assert key not in changed
    assert len(changed) == 5 + len(se.STAMPED_FILES)
    assert se.stamp_key(root, 'oldest', dists, gpus) == key


def test_stamp_matches_only_the_key_it_was_written_with(tmp_path):
    path = str(tmp_path / 'stamp.json')
    assert se.stamp_matches(path, 'k1') is None
    se.write_stamp(path, 'k1', 'torch 2.1.2')
    assert se.stamp_matches(path, 'k1')['summary'] == 'torch 2.1.2'
    assert se.stamp_matches(path, 'k2') is None
    with open(path, 'w') as f:
        f.write('{not json')
    assert se.stamp_matches(path, 'k1') is None


def test_installed_distributions_hash_each_record():
    import pytest as pkg
    from importlib.metadata import distribution
    record = distribution('pytest').read_text('RECORD')
    want = ('pytest', pkg.__version__,
            hashlib.sha256(record.encode()).hexdigest())
    assert want in se.installed_distributions()


def test_visible_gpus_are_read_without_torch():
    folder = '/proc/driver/nvidia/gpus'
    listed = sorted(os.listdir(folder)) if osp.isdir(folder) else []
    assert se.visible_gpus(dict(CUDA_VISIBLE_DEVICES='1')) == dict(
        gpus=listed, cuda_visible_devices='1')
    assert se.visible_gpus({})['cuda_visible_devices'] is None


def test_children_cpu_seconds_count_a_finished_child():
    before = se.children_cpu_seconds()
    subprocess.run([sys.executable, '-c',
                    'import time\nt = time.process_time()\n'
                    'while time.process_time() - t < 0.5: pass'], check=True)
    assert se.children_cpu_seconds() - before >= 0.4
