"""What every training run of the package shares: the run folder (weights, resumable state, ``log.csv``,
``curves.png``, ``summary.json``), torchrun set-up, and the backbone's frozen BatchNorm."""
import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..distributed import ProcessGroup, lending, rank_device, torchrun_ranks
from ..files import image_writer, torch_writer, write_atomic, write_json_atomic
from ..models.weights import weights_digest


def what_went_wrong(error: BaseException) -> str:
    """``"Kind: first line"`` of an exception, for a one-line message about a run's damaged file."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def freeze_backbone_batchnorm(model: nn.Module) -> None:
    """The backbone's BatchNorm statistics and affine parameters stay as initialised (GAIC trains one image
    per step, too few for batch statistics)."""
    for m in model.backbone.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def seed_epoch(seed: int, rank: int, epoch: int, *generators: torch.Generator) -> int:
    """Seeds torch's global RNG and ``generators`` for one epoch of one rank, and returns the seed (for
    Python's ``random``): every epoch draws the same numbers whether the run went straight through or was
    resumed before it."""
    value = (seed * 1_000_003 + rank) * 10_007 + epoch
    torch.manual_seed(value)
    for generator in generators:
        generator.manual_seed(value)
    return value


def plot_curves(rows: List[Dict[str, float]], path: Path, keys: Sequence[str]) -> None:
    """The per-epoch values of ``keys`` (the loss, then quality figures) as a PNG drawn with Pillow."""
    from PIL import Image, ImageDraw

    width, height, pad = 640, 360, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="black")
    epochs = [r["epoch"] for r in rows]
    colours = [(200, 40, 40), (40, 80, 200), (40, 160, 80), (160, 100, 20)]
    for i, key in enumerate(keys):
        points = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), float) and r[key] == r[key]]
        if not points:
            continue
        values = [v for _, v in points]
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        first, last = min(epochs), max(epochs)
        xy = [(pad + (x - first) / max(last - first, 1) * (width - 2 * pad), height - pad - (v - lo) / span * (height - 2 * pad))
              for x, v in points]
        colour = colours[i % len(colours)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for p in xy:
            draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
        draw.text((pad + 5 + 150 * i, 12), f"{key}: {values[-1]:.4f}", fill=colour)
    draw.text((width // 2 - 20, height - pad + 10), f"epoch {min(epochs)}..{max(epochs)}", fill="black")
    write_atomic(path, image_writer(image, format="PNG"))


@dataclass
class RunFolder:
    """A run folder: ``model.safetensors`` (the latest weights), ``state.pt`` (what resuming needs),
    ``log.csv`` and ``curves.png`` (one row per epoch), ``summary.json``. Every file is written atomically,
    by rank 0 only."""

    path: Path
    fields: Sequence[str]
    curves: Sequence[str]

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def state(self) -> Path:
        return self.path / "state.pt"

    def holds_run(self) -> bool:
        """Whether the folder holds a run's weights or state (what a new run would replace)."""
        return self.weights.exists() or self.state.exists()

    def load_state(self) -> Optional[Dict[str, Any]]:
        """The saved state (``None`` when the run has none yet), read with ``weights_only=True``; a file
        that is not one (truncated, emptied, another pickle) is a ``ValueError`` naming it."""
        if not self.state.exists():
            return None
        try:
            state = torch.load(self.state, map_location="cpu", weights_only=True)
        except Exception as e:  # EOFError, UnpicklingError, a zip reader's RuntimeError or OSError, ...
            raise ValueError(f"cannot resume from {self.state}: it is damaged ({what_went_wrong(e)}); train into "
                             "another --out") from None
        if not isinstance(state, dict):
            raise ValueError(f"cannot resume from {self.state}: it holds a {type(state).__name__}, not a run's state")
        return state

    def save_epoch(self, model: nn.Module, state: Dict[str, Any], rows: List[Dict[str, Any]], **save) -> None:
        """The epoch's weights, state (with ``rows``), log and curves."""
        self.path.mkdir(parents=True, exist_ok=True)
        model.save(self.weights, **save)
        state = dict(state, rows=rows)
        write_atomic(self.state, torch_writer(state))

        def table(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(self.fields), extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)

        write_atomic(self.path / "log.csv", table)
        plot_curves(rows, self.path / "curves.png", self.curves)

    def write_summary(self, summary: Dict[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", summary)


class Distributed(ProcessGroup):
    """torchrun for a training run, started on creation: this rank's place and device, and the collectives
    training uses (its ranks all run it, so a group started elsewhere is used too); ``close()`` tears down
    what it started, after a barrier."""

    def __init__(self, device: Optional[str]) -> None:
        ranks = torchrun_ranks()
        device = rank_device(device, ranks)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        super().__init__(ranks, "nccl" if device.type == "cuda" else "gloo", device, shared=True)
        self.device = device
        self.__enter__()

    @property
    def rank(self) -> int:
        return self.ranks.rank

    @property
    def world(self) -> int:
        return self.ranks.world

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """The gradients of ``params`` averaged over the ranks (every rank then takes the same step)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        with lending(grads):
            for g in grads:
                dist.all_reduce(g)
        for g in grads:
            g /= self.world

    def broadcast_buffers(self, module: nn.Module) -> None:
        """``module``'s buffers (BatchNorm statistics outside the frozen backbone) as rank 0 has them."""
        if self.active:
            buffers = list(module.buffers())
            with lending(buffers):
                for b in buffers:
                    dist.broadcast(b, 0)

    def close(self, wait: bool = True) -> None:
        super().close(wait)


@dataclass
class Stage:
    """Epochs of a run that train the same parameters with one optimiser (and learning-rate schedule),
    both built before the first epoch; ``name`` is what the state (and FCDB's log) records."""

    name: str
    epochs: int
    params: List[nn.Parameter]
    optimiser: torch.optim.Optimizer
    schedule: Optional[torch.optim.lr_scheduler.LRScheduler] = None


def summary_of(model: nn.Module, run: Distributed, rows: List[Dict[str, Any]], **extra: Any) -> Dict[str, Any]:
    """What ``summary.json`` records: the config, the ranks' weight digests (equal when in sync), the last row."""
    digests = [bytes(row.tolist()).decode() for row in run.gather(torch.tensor(list(weights_digest(model).encode())))]
    return {"world_size": run.world, "config": asdict(model.config),
            "rank_digests": digests, "ranks_in_sync": len(set(digests)) == 1, "last": rows[-1] if rows else None,
            **extra}
