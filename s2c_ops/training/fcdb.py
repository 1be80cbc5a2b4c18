"""Training S2CNet on real photos: FCDB's human crops and judged crop pairs.

1. **Cache** (:mod:`.features`): ImageNet MobileNetV2, frozen, runs once per photo and per mirror image; its
   multi-scale map and the proposer's object boxes (the same proposer as at inference) are kept.
2. **Frozen stage** (``epochs``): the rest of S2CNet trains on the cache. Per photo and step, the candidates
   of both protocols (the official 12x12 grid and the candidates of the human crop's aspect ratio, ``sample``
   of each, the best always among them) get a listwise loss towards their IoU with the human crop
   (:func:`~.losses.listwise_loss`), and the judged pairs a vote-weighted logistic loss
   (:func:`~.losses.pair_loss`); the mirror image half of the time.
3. **Fine-tuning** (``finetune_epochs``, optional): the whole model on pixels, the backbone at a lower
   learning rate, its BatchNorm frozen.

Each epoch ends with IoU / BDE on the validation photos (the package's list), the weights (float16
safetensors), the resumable state, ``log.csv`` and ``curves.png``. Under torchrun each rank caches and
trains on its share of the photos and the gradients are averaged. At the end the blend with the geometry
priors is chosen (:mod:`.blend_search`). :class:`FCDBTask` is this for :func:`~.loop.train`.
"""
import math
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from ..cropping.proposals import create_proposer
from ..cropping.transforms import OfficialPreprocess
from ..data.fcdb import FCDB
from ..files import torch_writer, write_atomic
from ..models.config import S2CNetConfig, resolve_config
from ..models.s2cnet import S2CNet
from .blend_search import write_blend
from .features import CachedPhoto, cache_photos
from .options import TrainOptions
from .run import Distributed, RunFolder, Stage, what_went_wrong
from .scoring import candidates, evaluate_cached, photo_loss

LOG_FIELDS = ["epoch", "stage", "loss", "ratio_iou", "ratio_bde", "free_iou", "free_bde", "seconds"]


class FCDBTask:
    """FCDB for :func:`~.loop.train` (see the module docstring): the cache of ``train_split`` (this rank's
    share) and, on rank 0, of ``eval_split`` in ``out/features.rank<r>.pt`` (reused on resume); a frozen
    stage (``epochs``, AdamW on the head) and a fine-tuning stage (``finetune_epochs``, the backbone too at a
    third of ``finetune_lr``), each with its one-cycle schedule; float16 weights. At the end, with
    ``blend``, :func:`~.blend_search.write_blend` (rank 0)."""

    log_fields = LOG_FIELDS
    curves = ("loss", "ratio_iou", "free_iou")
    weights_dtype = torch.float16
    seconds_digits = 1

    def __init__(self, options: TrainOptions, run: Distributed, log: Callable[[str], None]) -> None:
        self.options, self.run, self.log = options, run, log
        self.generator = torch.Generator()
        self.generators = (self.generator,)

    def config(self) -> S2CNetConfig:
        return replace(resolve_config(self.options.config), antialias=self.options.antialias)

    def prepare(self, model: S2CNet, folder: RunFolder) -> None:
        o, run = self.options, self.run
        self.preprocess = OfficialPreprocess.for_model(model)
        path = folder.path / f"features.rank{run.rank}.pt"
        cache = self._cached(path) if o.resume else None
        if cache is None:
            started = time.time()
            box_source = create_proposer(o.proposer)
            train_items = FCDB(o.data, o.train_split, preprocess=self.preprocess)
            mine = [train_items[i] for i in range(run.rank, len(train_items), run.world)]
            cache = {"train": cache_photos(model, mine, box_source, model.bbox_num, run.device,
                                           preprocess=self.preprocess)}
            if run.rank == 0:
                evaluated = FCDB(o.data, o.eval_split, preprocess=self.preprocess)
                cache["eval"] = cache_photos(model, evaluated, box_source, model.bbox_num, run.device,
                                             preprocess=self.preprocess)
                self.log(f"cached {len(cache['train'])} photos to train on, {len(cache['eval'])} to evaluate "
                         f"({time.time() - started:.0f} s; {train_items.report})")
            folder.path.mkdir(parents=True, exist_ok=True)
            payload = {k: [p.to_dict() for p in v] for k, v in cache.items()}
            write_atomic(path, torch_writer(payload))
        self.train: List[CachedPhoto] = cache["train"]
        self.evaluated: List[CachedPhoto] = cache.get("eval", [])
        if not self.train:
            raise ValueError(f"no photos to train on in {o.data} (split {o.train_split!r})")
        self.steps = math.ceil(int(run.gather(torch.tensor([len(self.train)])).max()) / o.photos_per_step)

    def _cached(self, path: Path) -> Optional[Dict[str, List[CachedPhoto]]]:
        """The cache a killed run wrote, or ``None`` (made again) where there is none or it cannot be read
        back: it is derived from the photos, so a damaged one costs its time, not the run."""
        try:
            cache = _load_cache(path)
            if cache is not None and not (isinstance(cache.get("train"), list) and isinstance(cache.get("eval", []), list)):
                raise ValueError("not a feature cache")
            return cache
        except Exception as e:  # truncated, emptied, another file: whatever it holds, it is made again
            self.log(f"the feature cache {path} cannot be read back ({what_went_wrong(e)}); caching the photos again")
            return None

    def stages(self, model: S2CNet) -> List[Stage]:
        o = self.options
        head = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
        backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad]
        plans = (("frozen", o.epochs, [{"params": head, "lr": o.lr}], 0.1),
                 ("finetune", o.finetune_epochs, [{"params": head, "lr": o.finetune_lr},
                                                  {"params": backbone, "lr": o.finetune_lr / 3}], 0.05))
        stages = []
        for name, epochs, groups, warm_up in plans:
            if epochs:
                optimiser = torch.optim.AdamW(groups, weight_decay=o.weight_decay)
                schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [g["lr"] for g in groups],
                                                               total_steps=epochs * self.steps, pct_start=warm_up)
                stages.append(Stage(name, epochs, [p for g in groups for p in g["params"]], optimiser, schedule))
        return stages

    def losses(self, model: S2CNet, stage: Stage, epoch: int, seed: int) -> Iterator[torch.Tensor]:
        o, per = self.options, self.options.photos_per_step
        fine = stage.name == "finetune"
        rng = random.Random(seed)
        order = list(range(len(self.train)))
        rng.shuffle(order)
        order = (order * math.ceil(self.steps * per / len(order)))[: self.steps * per]
        for step in range(self.steps):
            loss = 0.0
            for index in order[step * per : (step + 1) * per]:
                photo = self.train[index]
                view = int(rng.random() < 0.5)
                reduced = model.features(photo.view(view, self.preprocess).to(self.run.device)) if fine else None
                loss = loss + photo_loss(model, photo, candidates(photo), view, sample=o.sample,
                                         temperature=o.temperature, pair_weight=o.pair_weight,
                                         generator=self.generator, device=self.run.device, reduced=reduced)
            yield loss / per

    def evaluate(self, model: S2CNet, stage: Stage) -> Dict[str, float]:
        own = None
        if stage.name == "finetune":
            own = lambda photo: model.features(photo.view(0, self.preprocess).to(self.run.device))  # noqa: E731
        return evaluate_cached(model, self.evaluated, self.run.device, own)

    def epoch_line(self, row: Dict[str, Any], epochs: int) -> str:
        return (f"epoch {row['epoch']}/{epochs} ({row['stage']}) loss {row['loss']:.4f}  ratio given IoU "
                f"{row['ratio_iou']:.3f} BDE {row['ratio_bde']:.4f}  free form IoU {row['free_iou']:.3f} BDE "
                f"{row['free_bde']:.4f} ({row['seconds']} s)")

    def finish(self, model: S2CNet, folder: RunFolder) -> Dict[str, Any]:
        o = self.options
        extra: Dict[str, Any] = {}
        if self.run.rank == 0 and o.blend and self.evaluated:
            extra = write_blend(model, self.train, self.evaluated, self.run.device, self.preprocess, folder.path,
                                seed=o.seed, temperature=o.temperature, mirror=o.mirror, setting=o.blend_setting,
                                log=self.log)
        return {"epochs": o.epochs, "finetune_epochs": o.finetune_epochs, **extra}


def _load_cache(path: Path) -> Optional[Dict[str, List[CachedPhoto]]]:
    if not path.exists():
        return None
    data = torch.load(path, map_location="cpu", weights_only=True)
    return {k: [CachedPhoto.from_dict(d) for d in v] for k, v in data.items()}
