"""Small constant tensors on a device, made once: copying one from the host makes the host wait for a GPU
(and cannot be captured in a CUDA graph); a cached copy costs nothing after the first call."""
import functools
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor


def constant(values: Sequence[float], dtype: torch.dtype, device: Union[torch.device, str]) -> Tensor:
    """``values`` as a 1-D tensor of ``dtype`` on ``device``. Shared between calls: never write to it."""
    return _constant(tuple(float(v) for v in values), dtype, torch.device(device))


@functools.lru_cache(maxsize=256)
def _constant(values: Tuple[float, ...], dtype: torch.dtype, device: Union[torch.device, str]) -> Tensor:
    return torch.tensor(values, dtype=dtype, device=device)
