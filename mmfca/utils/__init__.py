# Copyright (c) mmfca contributors. All rights reserved.
from .checkpoint import TRUSTED_SCHEME, resolve_resume, trusted_checkpoint
from .dist import setup_cpu_distributed
from .graph_capture import in_graph_capture
from .runner import build_runner, load_config

__all__ = [
    'TRUSTED_SCHEME', 'build_runner', 'in_graph_capture', 'load_config',
    'resolve_resume', 'setup_cpu_distributed', 'trusted_checkpoint'
]
