# Copyright (c) mmfca contributors. All rights reserved.
"""One model builder for the deployment tools: a detector, classifier or
segmentor, by the config's ``default_scope``, with a checkpoint loaded
strictly under mmfca's trust rule."""
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

#: Each codebase's own model builder, by the config's default_scope.
BUILDERS = {
    'mmdet': 'mmdet.apis:init_detector',
    'mmpretrain': 'mmpretrain.apis:init_model',
    'mmseg': 'mmseg.apis:init_model',
}


def init_model(cfg, checkpoint: Optional[str] = None) -> torch.nn.Module:
    """The config's model on the CPU in eval mode, built by its codebase
    (:data:`BUILDERS`) under its default scope (the caller's scope is kept).

    Args:
        cfg (Config): A model config (it is not changed).
        checkpoint (str, optional): Loaded strictly (every tensor must fit)
            by mmfca's trust rule (:func:`mmfca.utils.trusted_checkpoint`:
            fully unpickled only inside ``cfg.work_dir``, elsewhere tensors,
            plain data and mmengine's training state). None: the config's
            initialisation (``init_weights``; no pretrained backbone).

    Returns:
        nn.Module: The model, with ``cfg`` and ``dataset_meta`` set.

    Raises:
        ValueError: One line: the scope is not one of :data:`BUILDERS`, the
            checkpoint cannot be read, or it does not fit the model.
    """
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
        # the builders' notes on a model built without a checkpoint
        warnings.simplefilter('ignore')
        build = getattr(importlib.import_module(module), name)
        model = revert_sync_batchnorm(build(cfg, None, device='cpu'))
    if checkpoint is None:
        model.init_weights()
        meta = {}
    else:
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                trusted_checkpoint(checkpoint, cfg.get('work_dir')),
                map_location='cpu')
        except Exception as err:  # the loader's refusal or the file's own
            raise ValueError(f'cannot read checkpoint {checkpoint}: '
                             f'{one_line(err)}') from err
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict):
            raise ValueError(f'cannot read checkpoint {checkpoint}: it '
                             f'holds {type(ckpt).__name__}, not weights')
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        try:
            load_state_dict(model, state, strict=True)
        except RuntimeError as err:
            raise ValueError(f'checkpoint {checkpoint} does not fit the '
                             f'config\'s model: {one_line(err)}') from err
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    elif not getattr(model, 'dataset_meta', None):
        model.dataset_meta = dict(
            classes=cfg.get('metainfo', {}).get('classes', ()))
    model.cfg = cfg
    return model.eval()


def one_line(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = ' '.join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'
