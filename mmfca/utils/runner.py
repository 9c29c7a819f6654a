# Copyright (c) mmfca contributors. All rights reserved.
"""What every tool does before running: load the config, build the runner."""
import glob
import os.path as osp
import warnings

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmfca.engine  # noqa: F401  (RNGStateHook)
from .dist import setup_cpu_distributed


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    """Load a config the way the tools do: overrides, work_dir, launcher.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): ``--work-dir``; defaults to the config's
            or ``./work_dirs/<config name>``.
        launcher (str): ``--launcher``.

    Returns:
        Config: The config.

    Raises:
        FileNotFoundError: If the config file does not exist.
    """
    if not osp.isfile(path):
        # configs that sat at the root of configs/ now live in its
        # subfolders (COCO detection: configs/det/) under the same name
        moved = sorted(glob.glob(osp.join(
            osp.dirname(path), '*', osp.basename(path))))
        hint = f' (did you mean {" or ".join(moved)}?)' if moved else ''
        raise FileNotFoundError(
            f'Config file {path} does not exist{hint}; configs live under '
            f'configs/, listed in model-index.yml (e.g. '
            f'configs/mask_rcnn_fca50_coco.py).')
    with warnings.catch_warnings():
        # mmengine finds `mmdet::` base configs through setuptools'
        # deprecated pkg_resources (mmengine.utils.is_installed); its
        # import warns (UserWarning or, on older setuptools,
        # DeprecationWarning, plus one per declare_namespace call)
        warnings.filterwarnings(
            'ignore', message='(pkg_resources is deprecated'
            '|Deprecated call to `pkg_resources)')
        cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(cfg):
    """Set up CPU multi-process training if needed and build the runner.

    Args:
        cfg (Config): A config from :func:`load_config`.

    Returns:
        Runner: The runner (``runner_type`` honoured).
    """
    setup_cpu_distributed(cfg, cfg.launcher)
    # checkpoints carry the RNG states: a resumed run continues exactly
    hooks = list(cfg.get('custom_hooks', []))
    if not any(h.get('type') == 'RNGStateHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='RNGStateHook')]
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
