# Copyright (c) mmfca contributors. All rights reserved.
"""As ``mmdet.apis`` / ``mmpretrain.apis`` / ``mmseg.apis``: the model of
a config and a checkpoint, for every tool and benchmark."""
import copy
import importlib
import re
import warnings
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_state_dict

from mmfca.utils import load_config, trusted_checkpoint

#: The codebase's own builder, by the config's ``default_scope``, reused;
#: mmfca adds what they lack: one entry for the three libraries, the trust
#: rule, strict loading (theirs warn on another model's checkpoint).
BUILDERS = {
    'mmdet': 'mmdet.apis:init_detector',
    'mmpretrain': 'mmpretrain.apis:init_model',
    'mmseg': 'mmseg.apis:init_model',
}


def one_line(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = ' '.join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None,
               work_dir: Optional[str] = None) -> torch.nn.Module:
    """The config's model built by its codebase's :data:`BUILDERS`, on the
    CPU in eval mode, ``checkpoint`` read once and loaded strictly. The
    default scope is left as it was (the libraries' ``inference_*`` need
    the codebase's: ``mmengine.registry.init_default_scope``).

    Args:
        config (str | Config): Config file or object (left unchanged).
        checkpoint (str, optional): Path or URL; None: the config's init,
            no pretrained backbone.
        work_dir (str, optional): The run's work dir: a checkpoint inside it
            is fully unpickled, any other loads weights only
            (:func:`mmfca.utils.trusted_checkpoint`).

    Raises:
        ValueError: One line: a ``default_scope`` not in :data:`BUILDERS`,
            an unreadable checkpoint, or one not fitting the model.
    """
    cfg = load_config(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    scope = cfg.get('default_scope')
    if scope not in BUILDERS:
        raise ValueError(f'the config\'s default_scope is {scope!r}; '
                         f'allowed: {sorted(BUILDERS)}')
    ckpt = {}
    if checkpoint is not None:  # read first: a refusal needs no model
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                trusted_checkpoint(checkpoint, work_dir), map_location='cpu')
            state = {re.sub(r'^module\.', '', k): v
                     for k, v in ckpt.get('state_dict', ckpt).items()}
        except Exception as err:  # the loader's refusal, the file's own
            raise ValueError(f'cannot read checkpoint {checkpoint}: '
                             f'{one_line(err)}') from err
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None  # the checkpoint's weights
    module, name = BUILDERS[scope].split(':')
    # recorded, not shown: the builders' notes on the missing checkpoint
    # (mmdet's resets the filters to 'once' first)
    with DefaultScope.overwrite_default_scope(scope), \
            warnings.catch_warnings(record=True):
        build = getattr(importlib.import_module(module), name)
        model = revert_sync_batchnorm(build(cfg, None, device='cpu'))
    if checkpoint is None:
        model.init_weights()
    else:
        try:
            load_state_dict(model, state, strict=True)
        except RuntimeError as err:
            raise ValueError(f'checkpoint {checkpoint} does not fit the '
                             f'config\'s model: {one_line(err)}') from err
    meta = ckpt.get('meta', {}).get('dataset_meta')
    if meta:
        model.dataset_meta = meta
    elif not getattr(model, 'dataset_meta', None):
        model.dataset_meta = dict(
            classes=cfg.get('metainfo', {}).get('classes', ()))
    model.cfg = cfg
    return model.eval()
