"""Loading never touches torch's global random generator.

Building a module runs its layers' random initialisation, which draws from torch's global generator even
when the weights are loaded over it right after. A model or detector loaded lazily (at the first crop of a
seeded run) would then shift every later draw of the run, so two runs with the same ``torch.manual_seed``
gave different crops. The package's loaders are wrapped in :func:`keeps_global_rng`.
"""
import functools
from typing import Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable)


def keeps_global_rng(fn: F) -> F:
    """``fn`` run with torch's CPU generator saved and restored around it (modules are built on the CPU,
    so no CUDA generator is drawn from)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
