"""torchrun and devices: the one place that reads torchrun's environment and picks a rank's device (used
by ``s2c crop`` and training)."""
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import torch


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun job (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def torchrun_ranks() -> Ranks:
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as torchrun sets them; ``ValueError`` when they are not
    whole numbers or the rank is out of range."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError(
            f"bad torchrun environment: RANK={os.environ.get('RANK')!r}, WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}, "
            f"LOCAL_RANK={os.environ.get('LOCAL_RANK')!r}"
        ) from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return Ranks(rank, world, local)


def rank_device(device: Optional[Union[str, torch.device]], ranks: Ranks) -> torch.device:
    """The device a rank computes on: ``device`` as given (default: CUDA when available, else the CPU);
    a CUDA device without an index becomes ``cuda:LOCAL_RANK`` (modulo the visible cards) under
    torchrun. ``ValueError`` for a device name torch does not know or CUDA asked for without CUDA."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device {device!r}: {e}") from None
    if device.type == "meta":
        raise ValueError(f"device {device}: the meta device holds no values to compute with; use cpu or cuda")
    backend = getattr(torch, device.type, None)
    if device.type != "cpu" and not (hasattr(backend, "is_available") and backend.is_available()):
        raise ValueError(f"device {device}: {device.type.upper()} is not available here")
    if device.type == "cuda":
        if device.index is None and ranks.distributed:
            device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count())
    return device


def init_process_group(ranks: Ranks, backend: str) -> bool:
    """Starts torch.distributed for a torchrun job. Returns whether this call started it (and so owns
    it and tears it down); ``False`` outside torchrun or when a group already exists."""
    import torch.distributed as dist

    if not ranks.distributed or dist.is_initialized():
        return False
    dist.init_process_group(backend)
    return True


@contextmanager
def lending(tensors: Sequence[torch.Tensor], timeout: float = 5.0) -> Iterator[None]:
    """Around collectives on ``tensors``: on leaving, waits (microseconds as a rule) until gloo's worker
    threads have let go of the CPU ones. A worker that drops the last reference after Python has dropped
    its own must take the GIL; if the interpreter is shutting down by then, the rank aborts ("terminate
    called without an active exception") although its work is done. That failed about one torchrun run in
    forty on a loaded machine."""
    lent = [(t, t._use_count()) for t in tensors if t.device.type == "cpu" and hasattr(t, "_use_count")]
    try:
        yield
    finally:
        deadline = time.monotonic() + timeout
        for t, count in lent:
            while t._use_count() > count and time.monotonic() < deadline:
                time.sleep(1e-4)


class ProcessGroup:
    """torch.distributed for a torchrun job, as a context manager: started on entering when this process is
    one of several ranks and no group exists yet, torn down on leaving (or :meth:`close`) when it was
    started here. Its collectives run while it is :attr:`active`: the group started here, or with
    ``shared=True`` one someone else started (training, whose ranks all run it); by default a group started
    elsewhere is not ours to use (``s2c crop`` may be called by one rank of a user's job). Inactive, the
    collectives do nothing. ``device``: the rank's device (:meth:`sum` reduces on it when it is CUDA, for NCCL,
    else on the CPU)."""

    def __init__(self, ranks: Ranks, backend: str = "gloo", device: Optional[torch.device] = None,
                 shared: bool = False) -> None:
        self.ranks, self.backend, self.shared = ranks, backend, shared
        self.reduce_device = device if device is not None and device.type == "cuda" else torch.device("cpu")
        self.started = self.active = False

    def __enter__(self) -> "ProcessGroup":
        import torch.distributed as dist

        self.started = init_process_group(self.ranks, self.backend)
        self.active = self.started or (self.shared and self.ranks.distributed and dist.is_initialized())
        return self

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks, on the CPU."""
        if self.active:
            import torch.distributed as dist

            values = values.to(self.reduce_device)
            with lending([values]):
                dist.all_reduce(values)
        return values.cpu()

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (one shape on every rank) of each rank, stacked in rank order, on the CPU."""
        if not self.active:
            return values[None].cpu()
        import torch.distributed as dist

        values = values.to(self.reduce_device)
        out = [torch.empty_like(values) for _ in range(self.ranks.world)]
        with lending([values, *out]):
            dist.all_gather(out, values)
        return torch.stack(out).cpu()

    def close(self, wait: bool = False) -> None:
        """Tears the group down if it was started here; ``wait``: after a barrier (a rank then never leaves
        while a peer still talks to it, which made gloo abort a rank now and then)."""
        if self.started:
            import torch.distributed as dist

            if wait:
                dist.barrier()
            self.started = self.active = False
            dist.destroy_process_group()

    def __exit__(self, *exc) -> None:
        self.close()
