"""Float32 islands under ``torch.autocast``: the parts of cropping whose decisions hang on small score
differences (the face detector and the other proposers, the geometry prior, the default model's blend and
expected-IoU decoding, the face rule) compute in float32 whatever autocast the caller set, while S2CNet's
backbone and graph run in the caller's lower precision. Outside autocast :func:`full_precision` is no
context at all, so traced and exported graphs stay as they were."""
from contextlib import nullcontext
from typing import ContextManager, Union

import torch


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch before 2.4's device_type argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def full_precision(device: Union[str, torch.device]) -> ContextManager:
    """Autocast switched off on ``device``'s type while it is on; nothing otherwise."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, enabled=False) if _autocast_enabled(device_type) else nullcontext()
