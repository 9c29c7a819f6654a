# Copyright (c) mmfca contributors. All rights reserved.
"""A detector, classifier or segmentor by its codebase's own builder, the
checkpoint loaded strictly by mmfca's trust rule."""
import importlib
import re
import warnings
from typing import Optional

import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_state_dict

from mmfca.utils import trusted_checkpoint

BUILDERS = {
    'mmdet': 'mmdet.apis:init_detector',
    'mmpretrain': 'mmpretrain.apis:init_model',
    'mmseg': 'mmseg.apis:init_model',
}


def one_line(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = ' '.join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def init_model(cfg, checkpoint: Optional[str] = None) -> torch.nn.Module:
    """``cfg``'s model by its codebase's :data:`BUILDERS`, on the CPU in
    eval mode; ``checkpoint`` loaded strictly by the trust rule (None: the
    config's init, no pretrained backbone). ValueError (one line): unknown
    scope, unreadable checkpoint, or one not fitting the model."""
    scope = cfg.get('default_scope')
    if scope not in BUILDERS:
        raise ValueError(f'the config\'s default_scope is {scope!r}; '
                         f'allowed: {sorted(BUILDERS)}')
    cfg = cfg.copy()
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None  # the checkpoint's weights
    module, name = BUILDERS[scope].split(':')
    with DefaultScope.overwrite_default_scope(scope), \
            warnings.catch_warnings():
        warnings.simplefilter('ignore')  # notes on the missing checkpoint
        build = getattr(importlib.import_module(module), name)
        model = revert_sync_batchnorm(build(cfg, None, device='cpu'))
    ckpt = {}
    if checkpoint is None:
        model.init_weights()
    else:
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                trusted_checkpoint(checkpoint, cfg.get('work_dir')),
                map_location='cpu')
            state = {re.sub(r'^module\.', '', k): v
                     for k, v in ckpt.get('state_dict', ckpt).items()}
        except Exception as err:  # the loader's refusal, the file's own
            raise ValueError(f'cannot read checkpoint {checkpoint}: '
                             f'{one_line(err)}') from err
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
