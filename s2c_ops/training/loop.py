"""The training loop of ``s2c train``, one for both datasets: a :class:`Task` (:class:`~.gaicd.GAICDTask`,
:class:`~.fcdb.FCDBTask`) brings the data, the stages and the loss of each step; the loop seeds each epoch
(:func:`~.run.seed_epoch`), averages the gradients over the torchrun ranks, evaluates and saves on rank 0.

Resuming (``--resume``) reads ``state.pt``, one format for both: ``epoch`` (epochs done), ``stage`` and the
stage's ``optimiser`` and ``schedule`` (``None`` without one), ``model`` (float32, whatever the weights
file's dtype), ``config`` and the log's ``rows``. The next epoch then draws what it would have drawn in an
uninterrupted run."""
import math
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence

import torch

from ..models.config import S2CNetConfig
from ..models.official import load_imagenet_backbone
from ..models.s2cnet import S2CNet
from .options import TrainOptions
from .run import (Distributed, RunFolder, Stage, freeze_backbone_batchnorm, seed_epoch, summary_of,
                  what_went_wrong)

STATE_KEYS = ("epoch", "stage", "optimiser", "schedule", "model", "config", "rows")


class Task(Protocol):
    """What a dataset brings to :func:`train`. ``log_fields``: the columns of ``log.csv`` (with ``"stage"``
    every row names its stage); ``curves``: those ``curves.png`` draws; ``generators``: seeded every epoch
    with torch's global one; ``weights_dtype``: of the weights file (``None``: as trained)."""

    log_fields: Sequence[str]
    curves: Sequence[str]
    generators: Sequence[torch.Generator]
    weights_dtype: Optional[torch.dtype]
    seconds_digits: int

    def config(self) -> S2CNetConfig:
        """The model of a fresh run."""

    def prepare(self, model: S2CNet, folder: RunFolder) -> None:
        """The data, once the model is on its device."""

    def stages(self, model: S2CNet) -> List[Stage]:
        """The run's stages in order, their optimisers built (the backbone's BatchNorm already frozen)."""

    def losses(self, model: S2CNet, stage: Stage, epoch: int, seed: int) -> Iterator[torch.Tensor]:
        """The loss of each step of an epoch; ``seed``: :func:`~.run.seed_epoch`'s, for Python's ``random``."""

    def evaluate(self, model: S2CNet, stage: Stage) -> Dict[str, float]:
        """The figures of the log after an epoch (rank 0)."""

    def epoch_line(self, row: Dict[str, Any], epochs: int) -> str:
        """What the run prints after an epoch."""

    def finish(self, model: S2CNet, folder: RunFolder) -> Dict[str, Any]:
        """The work after the last epoch (every rank); returns what ``summary.json`` adds."""


def train(options: TrainOptions, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Trains S2CNet as ``options`` say (also under torchrun) into the run folder ``options.out``: the
    weights, ``state.pt``, ``log.csv`` and ``curves.png`` every epoch, ``summary.json`` at the end (which
    this returns). ``device`` ``None``: CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else
    the CPU."""
    run = Distributed(options.device)
    torch.manual_seed(options.seed)
    task = _task(options, run, log)
    folder = RunFolder(options.out, task.log_fields, task.curves)
    saved = _saved_state(folder, options) if options.resume else None
    model = _model(options, task, saved, folder).to(run.device)
    task.prepare(model, folder)
    freeze_backbone_batchnorm(model)
    stages = task.stages(model)
    tunable = list({id(p): p for stage in stages for p in stage.params}.values())
    plan = [stage for stage in stages for _ in range(stage.epochs)]
    if saved is not None:
        _restore(saved, stages, plan, folder)
    rows: List[Dict[str, Any]] = list(saved["rows"]) if saved else []
    for epoch in range(int(saved["epoch"]) if saved else 0, len(plan)):
        stage = plan[epoch]
        started = time.time()
        seed = seed_epoch(options.seed, run.rank, epoch, *task.generators)
        model.train()
        freeze_backbone_batchnorm(model)
        trained = {id(p) for p in stage.params}
        for p in tunable:
            p.requires_grad_(id(p) in trained)
        total = torch.zeros(2, dtype=torch.float64)
        for loss in task.losses(model, stage, epoch, seed):
            stage.optimiser.zero_grad()
            loss.backward()
            run.average_gradients(stage.params)
            stage.optimiser.step()
            if stage.schedule is not None:
                stage.schedule.step()
            total += torch.tensor([float(loss.detach()), 1.0], dtype=torch.float64)
        total = run.sum(total)
        run.broadcast_buffers(model)
        row: Dict[str, Any] = {"epoch": epoch + 1}
        if "stage" in task.log_fields:
            row["stage"] = stage.name
        row["loss"] = float(total[0] / total[1])
        # Every rank sees the summed loss and the same weights: they stop together, before saving the epoch.
        if not math.isfinite(row["loss"]) or not all(bool(torch.isfinite(p).all()) for p in tunable):
            raise ValueError(f"epoch {epoch + 1}: the loss ({row['loss']:.4g}) or the weights are no longer finite: "
                             f"the run diverged; train again with a lower --lr ({folder.path} keeps its last finite "
                             "epoch, if any)")
        if run.rank == 0:
            row.update(task.evaluate(model, stage))
            row["seconds"] = round(time.time() - started, task.seconds_digits)
            rows.append(row)
            state = {"epoch": epoch + 1, "stage": stage.name, "optimiser": stage.optimiser.state_dict(),
                     "schedule": stage.schedule.state_dict() if stage.schedule is not None else None,
                     "model": model.state_dict(), "config": asdict(model.config), "options": options.identity()}
            folder.save_epoch(model, state, rows, dtype=task.weights_dtype)
            log(task.epoch_line(row, len(plan)))
        run.barrier()
    summary = summary_of(model, run, rows, **task.finish(model, folder))
    if run.rank == 0:
        folder.write_summary(summary)
    run.close()
    return summary


def _task(options: TrainOptions, run: Distributed, log: Callable[[str], None]) -> Task:
    if options.kind == "fcdb":
        from .fcdb import FCDBTask

        return FCDBTask(options, run, log)
    from .gaicd import GAICDTask

    return GAICDTask(options, run, log)


def _saved_state(folder: RunFolder, options: TrainOptions) -> Optional[Dict[str, Any]]:
    """The state a ``--resume`` continues (``None``: no run yet, it starts), refused when it lacks a key or
    was made with other options (:meth:`TrainOptions.identity`; a state of an earlier release has none)."""
    saved = folder.load_state()
    missing = [k for k in STATE_KEYS if saved is not None and k not in saved]
    if missing:
        raise ValueError(f"cannot resume from {folder.state}: it lacks {', '.join(missing)} (a GAICD "
                         "run of an earlier release); train again without --resume")
    wrong = [k for k, ok in _STATE_KINDS.items() if saved is not None and not ok(saved[k])]
    if wrong:
        raise ValueError(f"cannot resume from {folder.state}: it is damaged ({', '.join(wrong)} not what a run "
                         "saves); train into another --out")
    earlier, now = (saved or {}).get("options"), options.identity()
    if earlier is not None and earlier != now:
        other = [f"{k} {earlier.get(k)!r} (now {now[k]!r})" for k in now if earlier.get(k) != now[k]]
        raise ValueError(f"cannot resume {folder.path}: it was trained with {', '.join(other)}; resume with the "
                         "same options, or train into another --out")
    return saved


#: What each key of ``state.pt`` holds (:data:`STATE_KEYS`).
_STATE_KINDS: Dict[str, Callable[[Any], bool]] = {
    "epoch": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "stage": lambda v: isinstance(v, str), "optimiser": lambda v: isinstance(v, dict),
    "schedule": lambda v: v is None or isinstance(v, dict), "model": lambda v: isinstance(v, dict),
    "config": lambda v: isinstance(v, dict), "rows": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
}


def _restore(saved: Dict[str, Any], stages: List[Stage], plan: List[Stage], folder: RunFolder) -> None:
    """The saved stage's optimiser and schedule, where this run's plan of epochs is the saved run's: a
    schedule spans its stage's epochs, so a run resumed with other ``--epochs`` or ``--finetune-epochs`` is
    refused (``ValueError``), before it trains."""
    epoch, name = saved["epoch"], saved["stage"]
    if epoch > len(plan) or (epoch and plan[epoch - 1].name != name) or name not in [s.name for s in stages]:
        raise ValueError(f"cannot resume {folder.path}: it has trained {epoch} epochs, the last of stage {name!r}; "
                         f"this run plans {len(plan)} ({', '.join(f'{s.epochs} {s.name}' for s in stages)}): resume "
                         "with the run's --epochs and --finetune-epochs")
    stage = next(s for s in stages if s.name == name)
    planned = saved["schedule"].get("total_steps") if saved["schedule"] is not None else None
    if stage.schedule is not None and planned != stage.schedule.total_steps:
        raise ValueError(f"cannot resume {folder.path}: its {name} stage's schedule spans {planned} steps, this run's "
                         f"{stage.schedule.total_steps} (other --epochs or --finetune-epochs, or another number of "
                         "ranks): resume as the run was started")
    try:
        stage.optimiser.load_state_dict(saved["optimiser"])
        if stage.schedule is not None:
            stage.schedule.load_state_dict(saved["schedule"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"cannot resume from {folder.state}: its optimiser does not fit this run "
                         f"({what_went_wrong(e)})") from None


def _model(options: TrainOptions, task: Task, saved: Optional[Dict[str, Any]], folder: RunFolder) -> S2CNet:
    if saved is not None:
        try:
            model = S2CNet(saved["config"])
            model.load_state_dict(saved["model"])
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise ValueError(f"cannot resume from {folder.state}: its model does not load "
                             f"({what_went_wrong(e)})") from None
    else:
        model = S2CNet(task.config())
        if options.backbone_weights != "none":
            load_imagenet_backbone(model, options.backbone_weights)
    return model
