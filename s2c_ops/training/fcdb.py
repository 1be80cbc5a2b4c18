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
trains on its share of the photos and the gradients are averaged.
"""
import math
import random
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist

from ..cropping.proposals import get_proposer
from ..cropping.transforms import OfficialPreprocess
from ..data.fcdb import FCDB
from ..files import write_atomic
from ..models.config import ConfigLike, resolve_config
from ..models.official import load_imagenet_backbone
from ..models.s2cnet import S2CNet
from .blend_search import write_blend
from .features import CachedPhoto, cache_photos
from .run import Distributed, RunFolder, freeze_backbone_batchnorm, seed_epoch, summary_of
from .scoring import candidates, evaluate_cached, photo_loss

LOG_FIELDS = ["epoch", "stage", "loss", "ratio_iou", "ratio_bde", "free_iou", "free_bde", "seconds"]


def _average_gradients(params: List[torch.nn.Parameter], world: int) -> None:
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def _load_cache(path: Path) -> Optional[Dict[str, List[CachedPhoto]]]:
    if not path.exists():
        return None
    data = torch.load(path, map_location="cpu", weights_only=True)
    return {k: [CachedPhoto.from_dict(d) for d in v] for k, v in data.items()}


def train_fcdb(data, out, *, config: ConfigLike = "GAICv1", antialias: bool = True, epochs: int = 2,
               finetune_epochs: int = 0,
               lr: float = 3e-4, finetune_lr: float = 3e-5, weight_decay: float = 1e-4, temperature: float = 0.05,
               pair_weight: float = 0.5, sample: int = 24, photos_per_step: int = 4, proposer: str = "default",
               split: str = "fit", eval_split: str = "val", backbone_weights: str = "imagenet", seed: int = 0,
               blend: bool = True, mirror: Optional[bool] = None, blend_setting: Optional[tuple] = None,
               resume: bool = False, device: Optional[str] = None, log=print) -> Dict[str, Any]:
    """Trains S2CNet on the FCDB folder ``data`` into the run folder ``out`` (see the module docstring) and
    returns the summary. ``split`` is trained on (``"fit"``: the training photos without the validation
    list); ``eval_split`` is measured every epoch. At the end, with ``blend``, the geometry prior's network
    is trained on FCDB too, and :class:`~s2c_ops.models.blend.S2CNetWithPriors` is measured on
    ``eval_split`` for each setting of :data:`~.blend_search.BLEND_GRID` (``mirror``: only those with, or without, the
    mirror image; ``None``: both); the best (:func:`~.blend_search.choose_blend`) goes to ``out/blend.safetensors``
    (``blend.json`` lists them all; rank 0), or with ``blend_setting`` ``(G, P, T, ratio T or None, face T or
    None, mirror)`` that one, chosen beforehand (``split="train"`` trains on the evaluated photos too; the
    cache does not know which photos have faces, so the face temperature is written, not measured). ``antialias``: the
    model's input is resized with antialiasing (``config.antialias``; the face proposer needs it). The cache
    goes to ``out/features.rank<r>.pt`` and is reused on resume."""
    run = Distributed(device)
    folder = RunFolder(Path(out), LOG_FIELDS, ["loss", "ratio_iou", "free_iou"])
    torch.manual_seed(seed)
    generator = torch.Generator()

    saved = folder.load_state() if resume else None
    model = S2CNet(saved["config"] if saved else replace(resolve_config(config), antialias=antialias))
    if saved is not None:
        model.load_state_dict(saved["model"])  # float32: the weights file is float16
    elif backbone_weights != "none":
        load_imagenet_backbone(model, backbone_weights)
    model.to(run.device)
    preprocess = OfficialPreprocess.for_model(model)

    cache_path = folder.path / f"features.rank{run.rank}.pt"
    cache = _load_cache(cache_path) if resume else None
    if cache is None:
        started = time.time()
        box_source = get_proposer(proposer)
        train_items = FCDB(data, split, preprocess=preprocess)
        mine = [train_items[i] for i in range(run.rank, len(train_items), run.world)]
        cache = {"train": cache_photos(model, mine, box_source, model.bbox_num, run.device, preprocess=preprocess)}
        if run.rank == 0:
            evaluated = FCDB(data, eval_split, preprocess=preprocess)
            cache["eval"] = cache_photos(model, evaluated, box_source, model.bbox_num, run.device,
                                         preprocess=preprocess)
            log(f"cached {len(cache['train'])} photos to train on, {len(cache['eval'])} to evaluate "
                f"({time.time() - started:.0f} s; {train_items.report})")
        folder.path.mkdir(parents=True, exist_ok=True)
        payload = {k: [p.to_dict() for p in v] for k, v in cache.items()}
        write_atomic(cache_path, lambda tmp: torch.save(payload, tmp))
    train_photos = cache["train"]
    if not train_photos:
        raise ValueError(f"no photos to train on in {data} (split {split!r})")
    steps = math.ceil(max(run.gather(len(train_photos))) / photos_per_step)

    rows: List[Dict[str, Any]] = list(saved["rows"]) if saved else []
    done = int(saved["epoch"]) if saved else 0
    total_epochs = epochs + finetune_epochs
    freeze_backbone_batchnorm(model)
    head = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad]
    optimiser, schedule, stage = None, None, None
    for epoch in range(done, total_epochs):
        fine = epoch >= epochs
        if stage != ("finetune" if fine else "frozen"):
            stage = "finetune" if fine else "frozen"
            groups = [{"params": head, "lr": finetune_lr if fine else lr}]
            if fine:
                groups.append({"params": backbone, "lr": finetune_lr / 3})
            optimiser = torch.optim.AdamW(groups, weight_decay=weight_decay)
            length = (finetune_epochs if fine else epochs) * steps
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [g["lr"] for g in groups], total_steps=length,
                                                           pct_start=0.1 if not fine else 0.05)
            if saved is not None and saved.get("stage") == stage:
                optimiser.load_state_dict(saved["optimiser"])
                schedule.load_state_dict(saved["schedule"])
        started = time.time()
        rng = random.Random(seed_epoch(seed, run.rank, epoch, generator))
        model.train()
        freeze_backbone_batchnorm(model)
        for p in backbone:
            p.requires_grad_(fine)
        order = list(range(len(train_photos)))
        rng.shuffle(order)
        order = (order * math.ceil(steps * photos_per_step / len(order)))[: steps * photos_per_step]
        total = torch.zeros(2, dtype=torch.float64)
        for step in range(steps):
            loss = 0.0
            for index in order[step * photos_per_step : (step + 1) * photos_per_step]:
                photo = train_photos[index]
                view = int(rng.random() < 0.5)
                reduced = None
                if fine:
                    pixels = photo.view(view, preprocess).to(run.device)
                    reduced = model.features(pixels)
                loss = loss + photo_loss(model, photo, candidates(photo), view, sample=sample,
                                         temperature=temperature, pair_weight=pair_weight, generator=generator,
                                         device=run.device, reduced=reduced)
            loss = loss / photos_per_step
            optimiser.zero_grad()
            loss.backward()
            _average_gradients(head + (backbone if fine else []), run.world)
            optimiser.step()
            schedule.step()
            total += torch.tensor([float(loss.detach()), 1.0], dtype=torch.float64)
        total = run.sum(total)
        row: Dict[str, Any] = {"epoch": epoch + 1, "stage": stage, "loss": float(total[0] / total[1])}
        if run.rank == 0:
            own = (lambda photo: model.features(photo.view(0, preprocess).to(run.device))) if fine else None
            row.update(evaluate_cached(model, cache["eval"], run.device, own))
            row["seconds"] = round(time.time() - started, 1)
            rows.append(row)
            state = {"epoch": epoch + 1, "stage": stage, "optimiser": optimiser.state_dict(),
                     "schedule": schedule.state_dict(), "model": model.state_dict(), "config": asdict(model.config)}
            folder.save_epoch(model, state, rows, dtype=torch.float16)
            log(f"epoch {epoch + 1}/{total_epochs} ({stage}) loss {row['loss']:.4f}  ratio given IoU "
                f"{row['ratio_iou']:.3f} BDE {row['ratio_bde']:.4f}  free form IoU {row['free_iou']:.3f} BDE "
                f"{row['free_bde']:.4f} ({row['seconds']} s)")
        run.barrier()
    extra: Dict[str, Any] = {}
    if run.rank == 0 and blend and cache["eval"]:
        extra = write_blend(model, cache["train"], cache["eval"], run.device, preprocess, folder.path, seed=seed,
                            temperature=temperature, mirror=mirror, setting=blend_setting, log=log)
    summary = summary_of(model, run, rows, epochs=epochs, finetune_epochs=finetune_epochs, **extra)
    if run.rank == 0:
        folder.write_summary(summary)
    run.close()
    return summary
