# Copyright (c) mmfca contributors. All rights reserved.
"""The trust rule for loading checkpoints.

``weights_only=True`` loads tensors and plain data only, no arbitrary code.
torch >= 2.6 makes it ``torch.load``'s default, torch < 2.6 does not, and
mmengine 0.10 never passes it; so importing mmfca registers
:func:`load_from_weights_only` as mmengine's loader of local files and URLs
(every ``load_from``, ``init_cfg`` Pretrained and ``load_checkpoint`` goes
through ``CheckpointLoader``), and the rule holds on every torch version
(tested on 2.1.2 and 2.14.1). mmengine's resume checkpoints hold more
(``HistoryBuffer``, numpy arrays and reconstructors, ``_codecs.encode``,
builtins ``getattr``), and allowlisting ``getattr`` would reopen arbitrary
code execution. So:

* a checkpoint that lies inside the run's own ``work_dir`` (written by our
  tools for this config: ``--resume``, or ``tools/test.py`` on a checkpoint
  of that work dir) is fully unpickled; ``--resume`` from anywhere else is
  refused;
* **everything else** (``load_from``, ``init_cfg`` Pretrained, test
  checkpoints from elsewhere, converted weights) loads with
  ``weights_only=True`` and fails, naming the offending global, if the file
  holds anything but tensors and plain data.
"""
import os
import os.path as osp
from typing import Optional

import mmengine.runner.checkpoint as mmengine_checkpoint
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import find_latest_checkpoint

#: Scheme that marks a path the trust rule accepted for full unpickling.
TRUSTED_SCHEME = 'mmfca-trusted-resume://'


@CheckpointLoader.register_scheme(prefixes=TRUSTED_SCHEME)
def load_from_trusted_work_dir(filename, map_location=None):
    path = filename[len(TRUSTED_SCHEME):]
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path} can not be found.')
    # trusted: the run's own checkpoint (see mark_trusted)
    return torch.load(path, map_location=map_location, weights_only=False)


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
        dict: The loaded object (tensors and plain data only).

    Raises:
        pickle.UnpicklingError: If the file holds anything else; the message
            names the offending global.
    """
    if not filename.startswith(('http://', 'https://')):
        if not osp.isfile(filename):
            raise FileNotFoundError(f'Checkpoint {filename} can not be found.')
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    rank, world_size = get_dist_info()
    if rank > 0:
        barrier()
    checkpoint = torch.hub.load_state_dict_from_url(
        filename,
        model_dir=model_dir,
        map_location=map_location,
        progress=progress,
        weights_only=True)
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
