# Copyright (c) mmfca contributors. All rights reserved.
"""Save and restore the random number generators with each checkpoint."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Put the python, numpy and torch RNG states into every checkpoint and
    restore them on resume.

    mmengine re-seeds on resume but does not restore the generators, so a
    resumed run draws other RoI samples, flips and shuffles than the
    uninterrupted run would have. With this hook (added by
    ``tools/train.py``), a run resumed from a checkpoint continues exactly
    as the uninterrupted run (with ``randomness.deterministic=True`` and
    the same seed). The states are stored as tensors and plain data.
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        np_state = np.random.get_state()
        state = dict(
            python=random.getstate(),
            numpy=dict(name=np_state[0], keys=torch.from_numpy(
                np_state[1].astype(np.int64)), pos=int(np_state[2]),
                       has_gauss=int(np_state[3]),
                       cached_gaussian=float(np_state[4])),
            torch=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('rng_state')
        if state is None:
            return
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
        np_state = state['numpy']
        np.random.set_state(
            (np_state['name'], np_state['keys'].numpy().astype(np.uint32),
             np_state['pos'], np_state['has_gauss'],
             np_state['cached_gaussian']))
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
