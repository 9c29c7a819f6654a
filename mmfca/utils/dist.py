# Copyright (c) mmfca contributors. All rights reserved.
"""Multi-process training on CPU through mmengine's own launcher path."""
import os

import torch
import torch.distributed as dist


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Prepare a torchrun (``--launcher pytorch``) job for CPU-only nodes.

    mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device``
    unconditionally, which fails without a GPU. When CUDA is absent this
    initialises the gloo process group from torchrun's environment (the
    Runner then skips its own initialisation) and makes the DDP wrapper
    use ``device_ids=None``. With CUDA, nothing changes (NCCL as
    configured).

    Args:
        cfg (Config): The run's config; ``model_wrapper_cfg`` is updated.
        launcher (str): The ``--launcher`` value.

    Returns:
        bool: Whether the gloo group was set up here.
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')
    return True
