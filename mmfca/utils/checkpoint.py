# Copyright (c) mmfca contributors. All rights reserved.
"""Checkpoint loading under the trust rule.

A checkpoint inside the run's own ``work_dir`` (:func:`trusted_checkpoint`,
:func:`resolve_resume`) is fully unpickled. Every other path or URL that
mmengine's ``CheckpointLoader`` loads (``load_from``, ``init_cfg``
Pretrained, ``open-mmlab://``, ...) goes through
:func:`load_from_weights_only`: tensors, plain data and
:data:`TRAINING_STATE`, never code from the file.
"""
import _compat_pickle
import codecs
import os
import os.path as osp
import pickle
import re
import types
import zipfile
from typing import Optional
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, find_latest_checkpoint
from mmengine.utils import digit_version
from torch._weights_only_unpickler import _get_allowed_globals

try:  # numpy >= 2 (and the name numpy 2 writes into pickles)
    from numpy._core import multiarray
except ImportError:  # numpy < 1.26
    from numpy.core import multiarray

#: Marks a checkpoint the trust rule accepted for full unpickling.
TRUSTED_SCHEME = 'mmfca-trusted-resume://'
#: torch >= 2.6: weights_only with ``safe_globals``; else restricted Unpickler
SCOPED_SAFE_GLOBALS = digit_version(torch.__version__) >= digit_version('2.6')
#: The methods a ``HistoryBuffer`` pickles as ``getattr(HistoryBuffer, m)``.
STATISTICS = ('min', 'max', 'current', 'mean')
#: How torch.save's legacy (non-zip) format starts, after the protocol.
_LEGACY_MAGIC = pickle.dumps(0x1950a86a20f9469cfc6c, 2)[2:]


def history_buffer_statistic(owner, name):
    """Stand-in for ``builtins.getattr`` (never allowed: it reaches any
    attribute, hence code) that resolves only :data:`STATISTICS`."""
    if owner is not HistoryBuffer or name not in STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({getattr(owner, "__name__", type(owner).__name__)}, '
            f'{name!r}) is not allowed: only HistoryBuffer\'s {STATISTICS}.')
    return getattr(HistoryBuffer, name)


#: The allowlist beyond torch's: what mmengine's Runner saves beside the
#: weights (its log's HistoryBuffer; numpy arrays, scalars and dtypes under
#: numpy 1 and 2 names; bytes in pickle protocol 2; getattr's stand-in).
TRAINING_STATE = {
    'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
    'builtins.getattr': history_buffer_statistic,
    '_codecs.encode': codecs.encode,
    'numpy.ndarray': np.ndarray,
    'numpy.dtype': np.dtype,
    **{f'numpy.{core}.multiarray.{name}': getattr(multiarray, name)
       for core in ('core', '_core') for name in ('_reconstruct', 'scalar')},
    # numpy >= 1.25's class of each bool, (u)int, float and complex dtype
    **{f'{cls.__module__}.{cls.__qualname__}': cls
       for cls in map(type, map(np.dtype, '?bhilqBHILQefdFD'))}}


def describe_file(path: str) -> Optional[str]:
    """None if ``path`` is in ``torch.save``'s format (zip or legacy), else
    what it is, for messages ("an empty file", ...)."""
    with open(path, 'rb') as f:
        head, size = f.read(4096), os.fstat(f.fileno()).st_size
        zipped = zipfile.ZipFile(f).namelist() if zipfile.is_zipfile(f) \
            else None
    if zipped is not None:
        return None if any(n.split('/')[-1] == 'data.pkl' for n in zipped) \
            else "a zip archive without torch.save's data.pkl"
    if head[:1] == b'\x80':  # pickle protocol >= 2
        return None if _LEGACY_MAGIC in head[:32] else \
            'a pickle not written by torch.save'
    if not head:
        return 'an empty file'
    if head[:4] == b'PK\x03\x04':
        return (f'a truncated or damaged zip archive ({size} bytes; '
                "torch.save's format is a zip archive)")
    text = head.decode('utf-8', errors='replace')
    if '\ufffd' in text or not all(c.isprintable() or c.isspace()
                                   for c in text):
        return f'{size} bytes of binary data (starting with ' \
            f'{head[:8].hex(" ")})'
    return ('a text file starting with '
            f'{(text.strip().splitlines() or [""])[0][:40]!r}')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds more than :func:`load_from_weights_only` loads.

    Args:
        path (str): The checkpoint.
        names (list[str]): The offending globals the unpickler named.
        reason (str): What it said, for a refusal that names none.
    """

    def __init__(self, path, names, reason=''):
        self.path, self.names = path, names
        super().__init__(
            f'mmfca did not load {path}: it holds '
            f'{", ".join(self.names) or f"something else ({reason})"}, '
            "beyond tensors, plain data and mmengine's training state. Safe "
            "options: load your own run's checkpoints from inside its "
            '--work-dir (tools/test.py, deploy.py, visualize_attention'
            '.py; tools/train.py --resume), convert released FcaNet weights '
            'with tools/model_converters/fcanet2mmfca.py, or, where you '
            'trust the file, save its weights alone and load those.')


class NotACheckpointError(ValueError):
    """A file not in ``torch.save``'s format.

    Args:
        path (str): The file.
        what (str): What it is (:func:`describe_file`).
    """

    def __init__(self, path, what):
        self.path, self.what = path, what
        super().__init__(f'{path} is not a checkpoint: it is {what}; '
                         f'expected a checkpoint written by torch.save.')


def _safe_pickle_module():
    """A ``pickle_module`` for torch < 2.6 resolving only torch's safe
    globals and :data:`TRAINING_STATE` (pickle's "restricting globals")."""
    allowed = {**_get_allowed_globals(), **TRAINING_STATE}

    class Unpickler(pickle.Unpickler):

        def find_class(self, module, name):
            # Python 2 names (pickle protocol 2) mapped as pickle maps them
            full = '.'.join(_compat_pickle.NAME_MAPPING.get((module, name), (
                _compat_pickle.IMPORT_MAPPING.get(module, module), name)))
            if full in allowed:
                return allowed[full]
            raise pickle.UnpicklingError(f'GLOBAL {full} is not allowed')

    module = types.ModuleType('mmfca_safe_pickle')  # torch reads __name__
    module.Unpickler = Unpickler
    module.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
    return module


def load_from_weights_only(path, map_location=None, scoped=None):
    """mmengine's loader of local paths: a checkpoint's tensors, plain data
    and training state; raise :class:`NotACheckpointError` or
    :class:`UnsafeCheckpointError`.

    Args:
        path (str): Checkpoint file.
        map_location: As for :func:`torch.load`.
        scoped (bool, optional): ``torch.load(weights_only=True)`` with
            :data:`TRAINING_STATE` as ``safe_globals`` (torch >= 2.6), or the
            restricted Unpickler; None: :data:`SCOPED_SAFE_GLOBALS` decides.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path} can not be found.')
    what = describe_file(path)
    if what:
        raise NotACheckpointError(path, what)
    try:
        if not (SCOPED_SAFE_GLOBALS if scoped is None else scoped):
            return torch.load(path, map_location, weights_only=False,
                              pickle_module=_safe_pickle_module())  # safe
        with torch.serialization.safe_globals(
                [(obj, name) for name, obj in TRAINING_STATE.items()]):
            return torch.load(path, map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # its reason, not torch's advice
        reason = str(err).split('WeightsUnpickler error:')[-1].strip()
        reason = reason.split('\n')[0].split(' Please use')[0]
        names = re.findall(r'GLOBAL ([\w.]+)', str(err))
        if names or 'truncated' not in reason:
            raise UnsafeCheckpointError(path, names, reason) from None
    except (EOFError, IndexError) as err:  # what a cut legacy file raises
        reason = f'{type(err).__name__}: {err}'
    raise NotACheckpointError(path, "a truncated or damaged file in "
                              f"torch.save's legacy format ({reason})")


def load_url_weights_only(url, model_dir=None, map_location=None,
                          progress=True):
    """mmengine's ``load_url`` (behind ``http(s)://``, ``open-mmlab://``,
    ``torchvision://``, ``mmcls://``; rank 0 first), with the arguments
    mmengine passes: download into ``model_dir`` (default
    ``$TORCH_HOME/hub/checkpoints``) unless cached there, then
    :func:`load_from_weights_only`."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(path):
        os.makedirs(model_dir, exist_ok=True)
        torch.hub.download_url_to_file(url, path, progress=progress)
    return load_from_weights_only(path, map_location)


# named load_from_*: mmengine logs "Loads checkpoint by weights_only backend"
CheckpointLoader.register_scheme(
    prefixes='', loader=load_from_weights_only, force=True)
mmengine_checkpoint.load_url = load_url_weights_only


@CheckpointLoader.register_scheme(prefixes=TRUSTED_SCHEME)
def load_from_trusted_work_dir(filename, map_location=None):
    """Fully unpickle a checkpoint the trust rule marked (the run's own)."""
    return torch.load(filename[len(TRUSTED_SCHEME):], map_location,
                      weights_only=False)


def trusted_checkpoint(checkpoint: str, work_dir: Optional[str]) -> str:
    """``load_from`` for ``checkpoint``: marked trusted (fully unpickled) if
    it resolves inside the run's ``work_dir`` (a relative path that does not
    exist is taken relative to it), else as given (weights only).

    Args:
        checkpoint (str): Checkpoint path or URL (never trusted).
        work_dir (str | None): The run's work directory, if it has one.
    """
    if not work_dir or '://' in checkpoint:
        return checkpoint
    path = checkpoint if osp.isabs(checkpoint) or osp.exists(checkpoint) \
        else osp.join(work_dir, checkpoint)
    path, work_dir = osp.realpath(path), osp.realpath(work_dir)
    inside = osp.commonpath([path, work_dir]) == work_dir
    return TRUSTED_SCHEME + path if inside else checkpoint


def resolve_resume(work_dir: str, resume: str) -> Optional[str]:
    """``load_from`` for ``--resume``: the latest checkpoint of ``work_dir``
    (``'auto'``; None if none) or a path inside it, marked trusted.

    Args:
        work_dir (str): The run's work directory.
        resume (str): ``'auto'`` or a checkpoint path.
    """
    path = find_latest_checkpoint(work_dir) if resume == 'auto' else resume
    trusted = path and trusted_checkpoint(path, work_dir)
    if path and trusted == path:
        raise ValueError(
            f"Refusing to resume from {path}: it is outside the run's "
            f'work_dir {osp.realpath(work_dir)}. Resuming unpickles the '
            'checkpoint fully, which runs code from the file, so only the '
            "run's own checkpoints are trusted. Copy it into the work_dir if "
            'you trust it, or use load_from=... to load only its weights.')
    return trusted
