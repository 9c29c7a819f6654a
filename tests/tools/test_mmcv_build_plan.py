"""The set-up's mmcv decision (tools/mmcv_build_plan.py) on made-up
machines: CPU, GPUs with and without a matching nvcc, the shared CPU-only
wheel, the cache of earlier builds, and this machine's own facts."""
import json
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

from _helpers import REPO, load_tool

mbp = load_tool('mmcv_build_plan.py')


def make_wheel(path, cuda):
    """A stand-in mmcv wheel whose compiled ops link (or not) c10_cuda."""
    with zipfile.ZipFile(path, 'w') as whl:
        body = b'\x7fELF...libc10.so...' + (b'libc10_cuda.so' if cuda else b'')
        whl.writestr('mmcv/_ext.cpython-311-x86_64-linux-gnu.so', body)
        whl.writestr('mmcv/__init__.py', '')
    return str(path)


def facts(tmp_path, **overrides):
    base = dict(python_tag='cp311', torch_version='2.14.1+cu130',
                torch_cuda='13.0', gpu_capabilities=[], cxx20_required=True,
                nvccs=[], shared_wheels=[], cache_root=str(tmp_path / 'cache'),
                pip_nvcc_tried=False)
    base.update(overrides)
    return base


def nvcc(home, version, headers=True):
    return dict(path=f'{home}/bin/nvcc', home=home, version=version,
                headers=headers)


def test_wheel_cuda_ops_are_read_from_the_compiled_library(tmp_path):
    assert mbp.wheel_has_cuda_ops(make_wheel(tmp_path / 'g.whl', cuda=True))
    assert not mbp.wheel_has_cuda_ops(make_wheel(tmp_path / 'c.whl', False))


def test_cpu_machine_uses_the_shared_cpu_wheel_for_torch_2_14(tmp_path):
    shared = [dict(path='/s/mmcv.whl', cuda_ops=False)]
    assert mbp.plan(facts(tmp_path, shared_wheels=shared)) == dict(
        MMCV_SOURCE='wheel', MMCV_WHEEL='/s/mmcv.whl')


def test_cpu_machine_builds_cpu_ops_for_another_torch(tmp_path):
    got = mbp.plan(facts(tmp_path, torch_version='2.1.2+cu121',
                         torch_cuda='12.1', cxx20_required=False,
                         python_tag='cp38', shared_wheels=[
                             dict(path='/s/mmcv.whl', cuda_ops=False)]))
    assert got == dict(
        MMCV_SOURCE='build', MMCV_WITH_OPS='1', FORCE_CUDA='0',
        MMCV_CXX_STD='c++17', MMCV_CACHE_DIR=str(
            tmp_path / 'cache' / 'mmcv-2.1.0-cp38-torch2.1.2_cu121-cpu'))


def test_gpu_machine_never_takes_a_cpu_only_wheel(tmp_path):
    got = mbp.plan(facts(
        tmp_path, gpu_capabilities=['9.0'],
        shared_wheels=[dict(path='/s/mmcv.whl', cuda_ops=False)],
        nvccs=[nvcc('/usr/local/cuda-13.0', '13.0')]))
    assert got['MMCV_SOURCE'] == 'build' and got['FORCE_CUDA'] == '1'
    assert got['CUDA_HOME'] == '/usr/local/cuda-13.0'
    assert got['TORCH_CUDA_ARCH_LIST'] == '9.0'
    assert got['MMCV_CACHE_DIR'].endswith('torch2.14.1_cu130-cu130-sm90')
    # a shared wheel with CUDA ops is fine there
    got = mbp.plan(facts(tmp_path, gpu_capabilities=['9.0'], shared_wheels=[
        dict(path='/s/mmcv-cuda.whl', cuda_ops=True)]))
    assert got == dict(MMCV_SOURCE='wheel', MMCV_WHEEL='/s/mmcv-cuda.whl')


def test_nvcc_must_match_torch_cuda_major_and_prefers_the_minor(tmp_path):
    nvccs = [nvcc('/usr/local/cuda-12.4', '12.4'),
             nvcc('/opt/cuda-12.1-noheaders', '12.1', headers=False),
             nvcc('/usr/local/cuda-12.1', '12.1'),
             nvcc('/usr/local/cuda-11.8', '11.8')]
    got = mbp.plan(facts(tmp_path, torch_version='2.1.2+cu121',
                         torch_cuda='12.1', cxx20_required=False,
                         gpu_capabilities=['8.0', '8.6'], nvccs=nvccs))
    assert got['CUDA_HOME'] == '/usr/local/cuda-12.1'
    assert got['TORCH_CUDA_ARCH_LIST'] == '8.0;8.6'
    got = mbp.plan(facts(tmp_path, torch_version='2.1.2+cu121',
                         torch_cuda='12.1', gpu_capabilities=['8.0'],
                         nvccs=nvccs[:1] + nvccs[3:]))
    assert got['CUDA_HOME'] == '/usr/local/cuda-12.4'  # same major


def test_cuda_13_without_nvcc_installs_it_from_pypi_once(tmp_path):
    f = facts(tmp_path, gpu_capabilities=['9.0'],
              nvccs=[nvcc('/usr/local/cuda-12.8', '12.8')])
    assert mbp.plan(f) == dict(
        MMCV_SOURCE='pip-nvcc',
        MMCV_PIP_NVCC='nvidia-cuda-nvcc==13.0.* nvidia-cuda-runtime==13.0.*')
    f['pip_nvcc_tried'] = True
    with pytest.raises(mbp.PlanError, match=r'CUDA 13\.0.*cuda-12\.8'):
        mbp.plan(f)


def test_cuda_12_without_nvcc_says_what_to_install(tmp_path):
    f = facts(tmp_path, torch_version='2.1.2+cu121', torch_cuda='12.1',
              gpu_capabilities=['8.0'])
    with pytest.raises(mbp.PlanError) as err:
        mbp.plan(f)
    msg = str(err.value)
    assert 'capability 8.0' in msg and 'CUDA toolkit 12.1' in msg
    assert 'CUDA_HOME' in msg and 'Found: none' in msg
    assert 'nvidia-cuda-nvcc' not in msg  # PyPI has no usable tree for 12


def test_a_cached_build_is_reused_for_the_same_setup_only(tmp_path):
    f = facts(tmp_path, torch_version='2.1.2+cu121', python_tag='cp38')
    folder = mbp.cache_dir(f)
    assert mbp.plan(f)['MMCV_SOURCE'] == 'build'
    os.makedirs(folder)
    wheel = make_wheel(
        osp.join(folder, 'mmcv-2.1.0-cp38-cp38-linux_x86_64.whl'), False)
    assert mbp.plan(f) == dict(MMCV_SOURCE='wheel', MMCV_WHEEL=wheel)
    # the CPU build is not reused once a GPU is visible
    got = mbp.plan(dict(f, gpu_capabilities=['9.0'],
                        nvccs=[nvcc('/usr/local/cuda', '13.0')]))
    assert got['MMCV_SOURCE'] == 'build' and got['FORCE_CUDA'] == '1'


def test_script_prints_shell_assignments_or_fails_with_status_2(tmp_path):
    path = tmp_path / 'facts.json'
    path.write_text(json.dumps(facts(tmp_path, gpu_capabilities=['9.0'],
                                     nvccs=[nvcc('/c d', '13.0')])))
    script = osp.join(REPO, 'tools', 'mmcv_build_plan.py')
    out = subprocess.run([sys.executable, script, '--facts', str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert "CUDA_HOME='/c d'\n" in out and 'FORCE_CUDA=1\n' in out
    path.write_text(json.dumps(facts(tmp_path, gpu_capabilities=['9.0'],
                                     pip_nvcc_tried=True)))
    proc = subprocess.run([sys.executable, script, '--facts', str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ''
    assert 'nvidia-cuda-nvcc==13.0.*' in proc.stderr


def test_probe_reads_this_machine(tmp_path):
    import torch
    got = mbp.probe(str(tmp_path), str(tmp_path / 'cache'))
    assert got['torch_version'] == torch.__version__
    assert got['python_tag'] == 'cp{}{}'.format(*sys.version_info[:2])
    assert got['gpu_capabilities'] == (
        [] if not torch.cuda.is_available() else got['gpu_capabilities'])
    # torch 2.14's headers demand C++20, torch 2.1's do not
    major_minor = tuple(int(p) for p in torch.__version__.split('.')[:2])
    expected = {(2, 1): False, (2, 14): True}.get(major_minor)
    assert got['cxx20_required'] is (expected if expected is not None
                                     else got['cxx20_required'])
