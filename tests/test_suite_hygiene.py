"""The test suite's own rules (tests/_helpers/__init__.py): no test edits
``sys.path``, no test module imports another test module or conftest, and
scripts under tools/ are imported only through ``_helpers.load_tool``."""
import ast
import glob
import os.path as osp

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
