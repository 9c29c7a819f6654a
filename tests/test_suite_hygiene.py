"""The test suite's own rules (tests/_helpers/__init__.py): no test edits
``sys.path``, no test module imports another test module or conftest, and
scripts under tools/ are imported only through ``_helpers.load_tool``; a
passing test leaves no files behind (setup.cfg)."""
import ast
import glob
import os.path as osp
import subprocess
import sys

import pytest

from _helpers import REPO, TESTS

SOURCES = sorted(glob.glob(osp.join(TESTS, '**', '*.py'), recursive=True))
TOOL_MODULES = {
    osp.splitext(osp.basename(p))[0]
    for p in glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)
}


def violations(source):
    """(line, what) for every broken rule in a Python source text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == 'path' and \
                isinstance(node.value, ast.Name) and node.value.id == 'sys':
            found.append((node.lineno, 'sys.path'))
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split('.')[0]
            if top == 'conftest' or top.startswith('test_'):
                found.append((node.lineno, f'imports test module {name}'))
            elif top in TOOL_MODULES:
                found.append((node.lineno, f'imports tools script {name}'))
    return sorted(found)


def test_the_rules_catch_what_they_name():
    bad = ('import sys\nsys.path.insert(0, "x")\nfrom conftest import R\n'
           'from test_cls_seg import f\nimport train\n')
    assert [what for _, what in violations(bad)] == [
        'sys.path', 'imports test module conftest',
        'imports test module test_cls_seg', 'imports tools script train']
    assert violations('from _helpers import load_tool\n'
                      'train = load_tool("train.py")\n') == []


@pytest.mark.parametrize('path', SOURCES,
                         ids=[osp.relpath(p, TESTS) for p in SOURCES])
def test_no_sys_path_edits_or_cross_test_imports(path):
    with open(path) as f:
        assert violations(f.read()) == []


def test_a_passing_test_leaves_no_files_a_failing_one_keeps_them(tmp_path):
    """Under setup.cfg's pytest settings, a passing test's tmp_path is
    deleted when it ends and a failing test's stays for inspection (the
    suite writes about 9 GB of checkpoints and work dirs per session)."""
    (tmp_path / 'test_writes.py').write_text(
        'def write(tmp_path, name):\n'
        '    (tmp_path / "epoch_1.pth").write_bytes(bytes(1 << 20))\n'
        '    with open(%r, "a") as f:\n'
        '        f.write(f"{name} {tmp_path}\\n")\n'
        'def test_passes(tmp_path):\n'
        '    write(tmp_path, "passed")\n'
        'def test_fails(tmp_path):\n'
        '    write(tmp_path, "failed")\n'
        '    assert False\n' % str(tmp_path / 'dirs.txt'))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-c', osp.join(REPO, 'setup.cfg'), '--rootdir', str(tmp_path),
         '--basetemp', str(tmp_path / 'base'), 'test_writes.py'],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    assert '1 failed, 1 passed' in proc.stdout, proc.stdout
    dirs = dict(line.split(' ', 1)
                for line in (tmp_path / 'dirs.txt').read_text().splitlines())
    assert not osp.exists(dirs['passed'])
    assert osp.getsize(osp.join(dirs['failed'], 'epoch_1.pth')) == 1 << 20
