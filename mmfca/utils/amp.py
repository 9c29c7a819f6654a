# Copyright (c) mmfca contributors. All rights reserved.
"""Whether autocast is on for a device type, on every supported torch."""
import torch

__all__ = ['autocast_enabled']


def _autocast_enabled_before_2_4(device_type: str) -> bool:
    if device_type == 'cpu':
        return torch.is_autocast_cpu_enabled()
    return torch.is_autocast_enabled()


#: Whether autocast is on for a device type: ``torch.is_autocast_enabled``
#: takes one from torch 2.4 (chosen once: torch.compile cannot trace a
#: TypeError raised and caught at call time).
autocast_enabled = (torch.is_autocast_enabled
                    if hasattr(torch, 'get_autocast_dtype') else
                    _autocast_enabled_before_2_4)
