# Copyright (c) mmfca contributors. All rights reserved.
"""The trust rule for loading checkpoints.

``weights_only=True`` loads tensors and plain data only, no arbitrary code.
torch >= 2.6 makes it ``torch.load``'s default, torch < 2.6 does not, and
mmengine 0.10 never passes it; so importing mmfca registers
:func:`load_from_weights_only` as mmengine's loader of local files and URLs
(every ``load_from``, ``init_cfg`` Pretrained and ``load_checkpoint`` goes
through ``CheckpointLoader``), and the rule holds on every torch version
(tested on 2.1.2 and 2.14.1). So:

* a checkpoint that lies inside the run's own ``work_dir`` (written by our
  tools for this config: ``--resume``, or ``tools/test.py`` on a checkpoint
  of that work dir) is fully unpickled; ``--resume`` from anywhere else is
  refused;
* **everything else** (``load_from``, ``init_cfg`` Pretrained, test and
  export checkpoints from elsewhere, converted weights) loads through
  :func:`load_weights_only`: tensors, plain data and the few classes of the
  training state that mmengine's Runner writes into every checkpoint
  (:func:`training_state_globals`: its log ``HistoryBuffer``, numpy arrays
  and scalars), so a checkpoint of ``tools/train.py`` or ``make demo``
  works in every tool. Anything else is refused with
  :class:`UnsafeCheckpointError`, which names the offending globals and the
  safe options.

The training state needs ``getattr``: a ``HistoryBuffer`` pickles its
statistics methods as ``getattr(HistoryBuffer, 'mean')``. ``getattr`` itself
is never allowed (it reaches any attribute of any allowed object, hence
code); :func:`history_buffer_statistic` stands in for it and resolves only
those four methods.
"""
import codecs
import os
import os.path as osp
import pickle
import types
from typing import Any, Dict, List, Optional

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmengine.utils import digit_version

from .checkpoint_file import FileSummary, describe_file, full_name

try:  # numpy >= 2 (and the name numpy 2 writes into pickles)
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 1.26
    from numpy.core import multiarray as _multiarray

#: Scheme that marks a path the trust rule accepted for full unpickling.
TRUSTED_SCHEME = 'mmfca-trusted-resume://'


@CheckpointLoader.register_scheme(prefixes=TRUSTED_SCHEME)
def load_from_trusted_work_dir(filename, map_location=None):
    path = filename[len(TRUSTED_SCHEME):]
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path} can not be found.')
    # trusted: the run's own checkpoint (see mark_trusted)
    return torch.load(path, map_location=map_location, weights_only=False)


#: The statistics methods a ``HistoryBuffer`` pickles (mmengine's four).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

#: Plain numeric numpy dtypes of the arrays and scalars in mmengine's log.
NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
                'uint32', 'uint64', 'float16', 'float32', 'float64',
                'complex64', 'complex128')


def history_buffer_statistic(owner, name):
    """Stand-in for ``getattr`` while unpickling a training checkpoint.

    Args:
        owner: Must be mmengine's ``HistoryBuffer`` class.
        name (str): One of :data:`HISTORY_BUFFER_STATISTICS`.

    Returns:
        function: ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: For any other owner or name.
    """
    if owner is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({getattr(owner, "__name__", type(owner).__name__)}, '
            f'{name!r}) is not allowed: only HistoryBuffer\'s statistics '
            f'methods {HISTORY_BUFFER_STATISTICS}.')
    return getattr(HistoryBuffer, name)


def training_state_globals() -> Dict[str, Any]:
    """The globals of the training state in mmengine's checkpoints, beyond
    the tensors and plain data that ``weights_only=True`` loads.

    An explicit list, never a module or a general function: mmengine's
    ``HistoryBuffer`` (``message_hub``), numpy's array, dtype and scalar
    reconstructors (its log values; under both the numpy < 2 and the numpy 2
    module names), ``_codecs.encode`` (bytes in pickle protocol 2) and
    :func:`history_buffer_statistic` for ``getattr``.

    Returns:
        dict: Full pickle name -> the object it resolves to.
    """
    found = {
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'builtins.getattr': history_buffer_statistic,
        '_codecs.encode': codecs.encode,
        'numpy.ndarray': np.ndarray,
        'numpy.dtype': np.dtype,
    }
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        found[f'{module}._reconstruct'] = _multiarray._reconstruct
        found[f'{module}.scalar'] = _multiarray.scalar
    # numpy >= 1.25 gives each dtype its own class (BUILD checks the type)
    for name in NUMPY_DTYPES:
        cls = type(np.dtype(name))
        found[f'{cls.__module__}.{cls.__qualname__}'] = cls
    return found


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that mmfca does not unpickle.

    Args:
        path (str): The checkpoint.
        names (list[str]): The offending globals, if known.
        reason (str): What the unpickler said, when no global is known.
        summary (FileSummary, optional): What the file holds
            (:func:`describe_file`), when the loader read it.
    """

    def __init__(self, path: str, names: List[str], reason: str = '',
                 summary: Optional[FileSummary] = None):
        self.path, self.names, self.summary = path, sorted(names), summary
        held = ', '.join(self.names) if names else \
            f'something else ({reason})'
        super().__init__(
            f'mmfca did not load {path}: it holds {held}, beyond the '
            f'tensors, plain data and training state (mmengine\'s '
            f'HistoryBuffer, numpy arrays) that mmfca reads without running '
            f'code from the file. Safe options: if it is a checkpoint of your '
            f'own run, give the tool that run\'s work dir (tools/test.py, '
            f'export_onnx.py and visualize_attention.py take --work-dir DIR, '
            f'tools/train.py --resume; checkpoints inside it are trusted); '
            f'if it is the released FcaNet weights, convert them with '
            f'tools/model_converters/fcanet2mmfca.py; otherwise, in a '
            f'session where you trust the file, save its weights alone '
            f'(torch.save(dict(state_dict=..., meta=...), PATH)) and load '
            f'that.')


class NotACheckpointError(ValueError):
    """The file is not in ``torch.save``'s format at all.

    Args:
        path (str): The file.
        what (str): What it is (:func:`describe_file`).
        expected (str): What was expected.
    """

    def __init__(self, path: str, what: str,
                 expected: str = "a checkpoint written by torch.save"):
        self.path, self.what = path, what
        super().__init__(f'{path} is not a checkpoint: it is {what}; '
                         f'expected {expected}.')


def allowed_globals() -> Dict[str, Any]:
    """Every global :func:`load_weights_only` resolves: torch's own
    ``weights_only`` ones and :func:`training_state_globals`."""
    from torch._weights_only_unpickler import _get_allowed_globals
    return dict(_get_allowed_globals(), **training_state_globals())


def _safe_pickle_module() -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` (torch < 2.6) whose Unpickler
    resolves only :func:`allowed_globals` and refuses every other global:
    the Python documentation's "restricting globals"."""
    allowed = allowed_globals()

    class Unpickler(pickle.Unpickler):

        def find_class(self, module, name):
            full = full_name(module, name)
            if full not in allowed:
                raise pickle.UnpicklingError(f'global {full} is not allowed')
            return allowed[full]

    safe = types.ModuleType('mmfca_safe_pickle')
    safe.Unpickler = Unpickler
    safe.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
    return safe


#: torch >= 2.6 takes ``(object, name)`` pairs in ``safe_globals``.
SCOPED_SAFE_GLOBALS = digit_version(torch.__version__) >= digit_version('2.6')


def load_weights_only(path: str, map_location=None, scoped: bool = None):
    """Load a local checkpoint without running code from it.

    Tensors, plain data and :func:`training_state_globals` load; anything
    else is refused. On torch >= 2.6 this is ``torch.load(weights_only=True)``
    with those globals allowed for this call only
    (``torch.serialization.safe_globals``); older torch (2.1-2.5) cannot
    allow a global under another object's pickle name, so there it is
    ``torch.load`` with a restricted Unpickler that resolves nothing but
    :func:`allowed_globals`.

    Args:
        path (str): Checkpoint file.
        map_location: As for :func:`torch.load`.
        scoped (bool, optional): Force one of the two ways (tests); by
            default the torch version decides.

    Returns:
        The loaded object.

    Raises:
        NotACheckpointError: If the file is not in ``torch.save``'s format.
        UnsafeCheckpointError: If it holds anything else; the message names
            the offending globals and the safe options.
    """
    summary = describe_file(path)
    if summary.kind != 'torch':
        raise NotACheckpointError(path, summary.what)
    if scoped is None:
        scoped = SCOPED_SAFE_GLOBALS
    try:
        if not scoped:
            # safe: the Unpickler resolves only the allowed globals
            return torch.load(path, map_location=map_location,
                              pickle_module=_safe_pickle_module(),
                              weights_only=False)
        allowed = [(obj, name)
                   for name, obj in training_state_globals().items()]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        names = summary.globals - set(allowed_globals())
        raise UnsafeCheckpointError(path, list(names),
                                    _weights_only_reason(err),
                                    summary) from None


def _weights_only_reason(err: Exception) -> str:
    """The unpickler's reason, without torch's advice to drop
    ``weights_only``."""
    text = str(err)
    _, found, rest = text.partition('WeightsUnpickler error:')
    lines = [line.strip() for line in (rest if found else text).splitlines()
             if line.strip()]
    return lines[0].split(' Please use')[0] if lines else type(err).__name__


def load_from_weights_only(filename,
                           map_location=None,
                           model_dir=None,
                           progress=os.isatty(0)):
    """mmfca's loader of every checkpoint that is not the run's own: a local
    path or an ``http(s)://`` URL, loaded with ``weights_only=True`` on any
    torch version.

    Registered for mmengine's local and ``http(s)://`` schemes, and as
    mmengine's ``load_from_http``, through which its ``open-mmlab://``,
    ``torchvision://`` and ``mmcls://`` schemes download; so it takes
    ``load_from_http``'s arguments, in its order and with its defaults
    (mmengine 0.10). A URL is downloaded by rank 0 first (the others wait,
    then read the cached file), as mmengine does.

    Args:
        filename (str): Path or URL.
        map_location (str | torch.device, optional): As for
            :func:`torch.load`.
        model_dir (str, optional): Where a URL's file is downloaded to
            (:func:`torch.hub.load_state_dict_from_url`); None for
            ``$TORCH_HOME/hub/checkpoints``. Unused for a local path.
        progress (bool): Show a download progress bar. Defaults to whether
            standard input is a terminal, as in mmengine. Unused for a
            local path.

    Returns:
        dict: The loaded object (tensors and plain data; a local file may
        also hold the training state, see :func:`load_weights_only`).

    Raises:
        UnsafeCheckpointError: If the file holds anything else; the message
            names the offending globals and the safe options.
    """
    if not filename.startswith(('http://', 'https://')):
        if not osp.isfile(filename):
            raise FileNotFoundError(f'Checkpoint {filename} can not be found.')
        return load_weights_only(filename, map_location)
    rank, world_size = get_dist_info()
    if rank > 0:
        barrier()
    try:
        checkpoint = torch.hub.load_state_dict_from_url(
            filename,
            model_dir=model_dir,
            map_location=map_location,
            progress=progress,
            weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(filename, [],
                                    _weights_only_reason(err)) from None
    if rank == 0 and world_size > 1:
        barrier()
    return checkpoint


CheckpointLoader.register_scheme(
    prefixes=('', 'http://', 'https://'), loader=load_from_weights_only,
    force=True)
# the open-mmlab://, torchvision:// and mmcls:// loaders call this module
# global of mmengine's to fetch their URLs (same signature, see above)
mmengine_checkpoint.load_from_http = load_from_weights_only


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` resolves to a location inside ``folder``."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return osp.commonpath([path, folder]) == folder


def mark_trusted(path: str, work_dir: str) -> Optional[str]:
    """``path`` with the trusted scheme if it lies inside ``work_dir``.

    Args:
        path (str): Checkpoint path (relative paths that do not exist are
            taken relative to ``work_dir``).
        work_dir (str): The run's work directory.

    Returns:
        str | None: The marked path, or None if ``path`` is not trusted.
    """
    if not osp.isabs(path) and not osp.exists(path):
        path = osp.join(work_dir, path)
    return TRUSTED_SCHEME + osp.realpath(path) if is_inside(
        path, work_dir) else None


def trusted_checkpoint(checkpoint: str, work_dir: Optional[str]) -> str:
    """The path to load ``checkpoint`` from under the trust rule.

    The one place the rule is applied for loading (test, deploy, export,
    visualise): a checkpoint inside the run's own ``work_dir`` comes back
    marked trusted (fully unpickled); anything else, or any checkpoint when
    there is no ``work_dir``, comes back as given and loads weights-only.

    Args:
        checkpoint (str): Checkpoint path or URL.
        work_dir (str | None): The run's work directory, if it has one.

    Returns:
        str: A value for ``load_from`` / ``load_checkpoint``.
    """
    if not work_dir or '://' in checkpoint:
        return checkpoint
    return mark_trusted(checkpoint, work_dir) or checkpoint


def resolve_resume(work_dir: str, resume: str) -> Optional[str]:
    """Apply the trust rule to a ``--resume`` argument.

    Args:
        work_dir (str): The run's work directory.
        resume (str): ``'auto'`` (latest checkpoint of ``work_dir``) or a
            checkpoint path.

    Returns:
        str | None: A ``load_from`` value marking the checkpoint trusted, or
        None when ``'auto'`` finds no checkpoint (the run starts afresh).

    Raises:
        ValueError: If the checkpoint lies outside ``work_dir``.
    """
    path = find_latest_checkpoint(work_dir) if resume == 'auto' else resume
    if path is None:
        return None
    trusted = mark_trusted(path, work_dir)
    if trusted is None:
        raise ValueError(
            f'Refusing to resume from {path}: it is outside the run\'s '
            f'work_dir {osp.realpath(work_dir)}. Resuming unpickles the '
            f'checkpoint fully (it holds non-tensor training state), which '
            f'runs code from the file, so only the run\'s own checkpoints '
            f'are trusted. Copy it into the work_dir if you trust it, or use '
            f'load_from=... to load only its weights (weights_only=True).')
    return trusted
