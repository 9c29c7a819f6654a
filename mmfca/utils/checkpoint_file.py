# Copyright (c) mmfca contributors. All rights reserved.
"""What a checkpoint file holds, read without unpickling it.

``torch.load`` on a file that is not a checkpoint fails with whatever its
unpickler meets first (``invalid load key``, ``KeyError: 101``, ``pop from
empty list``, ...), and on a pickle that holds other objects it advises to
drop ``weights_only``. :func:`describe_file` reads the file's format and
the pickle's opcodes statically (``pickletools``: nothing is called or
imported), so the loaders can say what the file is instead.
"""
import _compat_pickle
import os.path as osp
import pickletools
import zipfile
from typing import NamedTuple, Set

#: ``torch.save``'s legacy (non-zip) format starts with this pickled number.
TORCH_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c

#: Opcodes that start a container, by the type they build.
_CONTAINERS = {
    'EMPTY_DICT': 'a dict',
    'EMPTY_LIST': 'a list',
    'EMPTY_SET': 'a set',
    'EMPTY_TUPLE': 'a tuple'
}
_STRINGS = ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE',
            'SHORT_BINSTRING', 'BINSTRING', 'STRING')


class FileSummary(NamedTuple):
    """See :func:`describe_file`."""
    #: ``'torch'`` (``torch.save``'s zip or legacy format), ``'pickle'``
    #: (any other pickle) or ``'other'``.
    kind: str
    #: What the file is, for messages: ``"torch.save's format holding a
    #: dict"``, ``"a pickle of argparse.Namespace"``, ``"a text file
    #: starting with 'epoch,loss'"``, ``"an empty file"``, ...
    what: str
    #: Type of the pickled top-level object (``'a dict'``, ``'a list'``,
    #: ``'argparse.Namespace'``, ...); ``''`` if unknown.
    top: str = ''
    #: Globals (``module.name``) the pickle refers to.
    globals: Set[str] = frozenset()
    #: Whether it holds tensor storages (``torch.save``'s persistent ids).
    tensors: bool = False


def full_name(module: str, name: str) -> str:
    """``module.name`` with Python 2 names mapped as pickle and torch map
    them for protocol 2 (``__builtin__.getattr`` -> ``builtins.getattr``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f'{module}.{name}'


def read_pickle(data: bytes):
    """Top-level type, globals and tensor storages of the first pickle in
    ``data``, from its opcodes alone.

    Returns:
        tuple: ``(top, globals, tensors, value)``; ``value`` is the pickled
        object when it is a single constant (torch's legacy magic number),
        else None.

    Raises:
        ValueError: If ``data`` does not start with a valid pickle.
    """
    top, names, tensors, value = '', set(), False, None
    strings, memo, last = [], {}, None
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ('PROTO', 'FRAME', 'STOP'):
            continue
        if not top and value is None:
            top = _CONTAINERS.get(name, '')
            value = arg if name in ('LONG1', 'LONG4') else None
        if name in ('BINPUT', 'LONG_BINPUT', 'PUT', 'MEMOIZE'):
            memo[len(memo) if name == 'MEMOIZE' else arg] = last
            continue
        last = None
        if name in _STRINGS:
            last = arg
        elif name in ('BINGET', 'LONG_BINGET', 'GET'):
            last = memo.get(arg)
        elif name in ('GLOBAL', 'STACK_GLOBAL'):
            found = full_name(*arg.split(' ', 1)) if name == 'GLOBAL' else (
                full_name(*strings[-2:]) if len(strings) >= 2 else '?')
            names.add(found)
            top = top or found
        elif name in ('BINPERSID', 'PERSID'):
            tensors = True
        if isinstance(last, str):
            strings.append(last)
    return top, names, tensors, value


def describe_file(path: str) -> FileSummary:
    """What ``path`` holds, without unpickling it.

    Args:
        path (str): An existing file.

    Returns:
        FileSummary: Its kind, a description and the pickle's contents.
    """
    size = osp.getsize(path)
    if size == 0:
        return FileSummary('other', 'an empty file')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pkls = [n for n in archive.namelist()
                    if n.endswith('/data.pkl') or n == 'data.pkl']
            if not pkls:
                return FileSummary(
                    'other', f'a zip archive without torch.save\'s data.pkl '
                    f'(it holds {", ".join(archive.namelist()[:3])}...)')
            data = archive.read(pkls[0])
        try:
            top, names, tensors, _ = read_pickle(data)
        except ValueError as err:
            return FileSummary('other', f'a zip archive whose data.pkl is '
                               f'not a pickle ({err})')
        return FileSummary('torch', "torch.save's format holding "
                           f'{_article(top)}', top, names, tensors)
    with open(path, 'rb') as f:
        head = f.read(1 << 16)
    if head[:4] == b'PK\x03\x04':
        return FileSummary(
            'other', f'a truncated or damaged zip archive ({size} bytes; '
            f'torch.save\'s format is a zip archive)')
    if head[:1] == b'\x80':  # pickle protocol >= 2
        with open(path, 'rb') as f:
            data = f.read()
        try:
            top, names, tensors, value = read_pickle(data)
        except ValueError as err:
            return FileSummary(
                'other', f'{size} bytes that start like a pickle but are not '
                f'one ({err})')
        if value == TORCH_LEGACY_MAGIC:
            return FileSummary('torch', "torch.save's legacy format")
        return FileSummary('pickle', f'a pickle of {_article(top)}', top,
                           names, tensors)
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c.isspace()
                                for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ''
        return FileSummary('other', f'a text file starting with {first!r}')
    return FileSummary(
        'other', f'{size} bytes of binary data (starting with '
        f'{head[:8].hex(" ")})')


def _article(top: str) -> str:
    """``'a dict'`` and class names stay; unknown is ``'an object'``."""
    return top or 'an object'


def holds_dict(summary: FileSummary) -> bool:
    """Whether the pickled top-level object is a dict (or OrderedDict)."""
    return summary.top in ('a dict', 'collections.OrderedDict')
