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

from ..cropping.candidates import grid_anchors, ratio_anchors
from ..cropping.proposals import get_proposer
from ..cropping.transforms import OfficialPreprocess
from ..data.fcdb import FCDB
from ..data.metrics import iou
from ..evaluation import BestCropMetrics
from ..files import write_atomic, write_json_atomic
from ..models.config import ConfigLike, resolve_config
from ..models.official import load_imagenet_backbone
from ..models.prior import GeometryPrior, PriorConfig, normalised
from ..models.s2cnet import S2CNet
from ..ops.boxes import flip_boxes
from .features import CachedPhoto, cache_photos
from .losses import listwise_loss, pair_loss
from .run import Distributed, RunFolder, freeze_backbone_batchnorm, seed_epoch, summary_of

LOG_FIELDS = ["epoch", "stage", "loss", "ratio_iou", "ratio_bde", "free_iou", "free_bde", "seconds"]
PROTOCOLS = ("ratio", "free")


def candidates(photo: CachedPhoto) -> Dict[str, torch.Tensor]:
    """Both protocols' candidates of a photo, in its pixels: ``"ratio"`` (the human crop's aspect ratio, as
    the Cropper makes them) and ``"free"`` (the official grid)."""
    height, width = photo.geometry.original
    x1, y1, x2, y2 = photo.crop.tolist()
    return {"ratio": ratio_anchors(height, width, (x2 - x1) / (y2 - y1)), "free": grid_anchors(height, width)}


def score_view(model: S2CNet, photo: CachedPhoto, view: int, boxes: torch.Tensor, device: torch.device,
               reduced: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Scores of ``boxes`` (original pixels) on one view of a photo (1: the mirror image), from the cached
    map, or from ``reduced`` (the model's own features of that view, when fine-tuning)."""
    if reduced is None:
        reduced = model.reduce(photo.features[view : view + 1].to(device).float())
    h, w = photo.geometry.resized
    model_boxes = photo.geometry.boxes_to_model(boxes.to(device))
    if view:
        model_boxes = flip_boxes(model_boxes, w)
    bounds = torch.tensor([w, h, w, h], dtype=model_boxes.dtype, device=device)
    model_boxes = torch.minimum(model_boxes.clamp(min=0), bounds)
    zeros = model_boxes.new_zeros((len(model_boxes), 1))
    objects = photo.objects[view].to(device)
    return model.score(reduced, torch.cat([zeros, model_boxes], 1),
                       torch.cat([objects.new_zeros((len(objects), 1)), objects], 1), (h, w))


def photo_loss(model: S2CNet, photo: CachedPhoto, sets: Dict[str, torch.Tensor], view: int, *, sample: int,
               temperature: float, pair_weight: float, generator: torch.Generator, device: torch.device,
               reduced: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The training loss of one photo view: listwise over ``sample`` candidates of each protocol (the best
    one always among them) plus the pairs' loss."""
    chosen, targets = [], []
    for boxes in sets.values():
        t = torch.as_tensor(iou(boxes.numpy(), photo.crop[None].numpy()), dtype=torch.float32)
        if len(boxes) > sample:
            best = int(t.argmax())
            rest = torch.randperm(len(boxes), generator=generator)
            index = torch.cat([torch.tensor([best]), rest[rest != best][: sample - 1]])
            boxes, t = boxes[index], t[index]
        chosen.append(boxes)
        targets.append(t)
    pairs = photo.pairs.reshape(-1, 4)
    scores = score_view(model, photo, view, torch.cat(chosen + [pairs]), device, reduced)
    loss = scores.new_zeros(())
    start = 0
    for boxes, t in zip(chosen, targets):
        loss = loss + listwise_loss(scores[start : start + len(boxes)], t.to(device), temperature)
        start += len(boxes)
    if len(pairs) and pair_weight:
        p = scores[start:].reshape(-1, 2)
        loss = loss + pair_weight * pair_loss(p[:, 0], p[:, 1], photo.votes.to(device))
    return loss


@torch.no_grad()
def evaluate_cached(model: S2CNet, photos: List[CachedPhoto], device: torch.device,
                    features: Optional[callable] = None) -> Dict[str, float]:
    """IoU and BDE of the top-1 crop of each protocol on ``photos`` (as :func:`~s2c_ops.evaluation.evaluate_fcdb`
    measures them), from the cache, or with ``features(photo)`` the model's own reduced features."""
    model.eval()
    metrics = BestCropMetrics()
    for photo in photos:
        reduced = features(photo) if features is not None else None
        for protocol, boxes in candidates(photo).items():
            scores = score_view(model, photo, 0, boxes, device, reduced)
            metrics.update(photo.file, "model", protocol, boxes[int(scores.argmax())], photo.crop,
                           photo.geometry.original)
    result = metrics.compute().get("model", {})
    return {f"{p}_{k}": result[p][k] if p in result else float("nan") for p in PROTOCOLS for k in ("iou", "bde")}


def prior_scores(prior, photo: CachedPhoto, view: int, boxes: torch.Tensor) -> torch.Tensor:
    """A geometry prior's scores of ``boxes`` (original pixels) on one view of a photo, with its cached
    object boxes."""
    crops = normalised(boxes.float(), *photo.geometry.original)
    if view:
        crops = flip_boxes(crops, 1.0)
    return prior.score_image(crops, normalised(photo.objects[view].float(), *photo.geometry.resized).clamp(0, 1))


def train_fcdb_prior(photos: List[CachedPhoto], *, epochs: int, lr: float, temperature: float, seed: int,
                     log) -> GeometryPrior:
    """The geometry prior's network trained on FCDB's human crops: the same listwise loss on both
    protocols' candidates as S2CNet, on geometry alone (crop boxes and the cached object boxes)."""
    prior = GeometryPrior(PriorConfig())
    optimiser = torch.optim.Adam(prior.parameters(), lr=lr, weight_decay=1e-5)
    rng = random.Random(seed)
    sets = [(photo, [(boxes, torch.as_tensor(iou(boxes.numpy(), photo.crop[None].numpy()), dtype=torch.float32))
                     for boxes in candidates(photo).values()]) for photo in photos]
    for epoch in range(epochs):
        rng.shuffle(sets)
        total = 0.0
        for start in range(0, len(sets), 16):
            loss = sum(listwise_loss(prior_scores(prior, photo, int(rng.random() < 0.5), boxes), t, temperature)
                       for photo, targets in sets[start : start + 16] for boxes, t in targets) / 16
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
    log(f"FCDB geometry prior: {epochs} epochs, last loss {total / math.ceil(len(sets) / 16):.4f}")
    return prior.eval()


#: The blends measured at the end of training: FCDB-prior weights, GAICD-prior weights, temperatures, and
#: whether S2CNet also scores the mirror image (twice the backbone's time).
BLEND_GRID = ((0.0, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0), (None, 0.5, 0.7, 1.0, 1.4, 2.0), (True, False))


def choose_blend(results: Dict[tuple, Dict[str, float]], mirror: Optional[bool] = None) -> Dict[str, Any]:
    """The best blend of :func:`measure_blends`' ``results`` (mean of the two protocols' IoU), ``mirror``
    ``None`` or that side alone. For each weighting, each protocol takes its own best temperature: the
    ratio-given candidates are sets of one aspect ratio, decoded at ``ratio_temperature``; free-form sets at
    ``temperature`` (no decoding is one option for both). Returns the setting with its figures."""
    options = []
    for g, p, m in sorted({(c[0], c[1], c[3]) for c in results if mirror is None or c[3] == mirror}):
        temps = [c[2] for c in results if (c[0], c[1], c[3]) == (g, p, m)]
        pairs = [(None, None)] if None in temps else []
        decoded = [t for t in temps if t is not None]
        if decoded:
            pairs.append((max(decoded, key=lambda t: results[(g, p, t, m)]["free_iou"]),
                          max(decoded, key=lambda t: results[(g, p, t, m)]["ratio_iou"])))
        options += [blend_figures(results, g, p, free_t, ratio_t, m) for free_t, ratio_t in pairs]
    return max(options, key=lambda o: o["ratio_iou"] + o["free_iou"])


def blend_figures(results: Dict[tuple, Dict[str, float]], g: float, p: float, free_t: Optional[float],
                  ratio_t: Optional[float], m: bool, face_t: Optional[float] = None) -> Dict[str, Any]:
    """A blend setting with its figures from :func:`measure_blends`' ``results``: ratio given as measured at
    ``ratio_t`` (``None``: ``free_t``), free form at ``free_t``; ``face_t``, the face temperature, is recorded
    but not measured (the results know no faces)."""
    ratio_t = None if ratio_t == free_t else ratio_t
    figures = {k: v for k, v in results[(g, p, free_t if ratio_t is None else ratio_t, m)].items()
               if k.startswith("ratio_")}
    figures.update({k: v for k, v in results[(g, p, free_t, m)].items() if k.startswith("free_")})
    return {"geometry_weight": g, "gaicd_weight": p, "temperature": free_t, "ratio_temperature": ratio_t,
            "face_temperature": face_t, "mirror": m, **figures}


@torch.no_grad()
def measure_blends(model: S2CNet, fcdb_prior, gaicd_prior, photos: List[CachedPhoto], device: torch.device,
                   preprocess: OfficialPreprocess, grid=BLEND_GRID) -> Dict[tuple, Dict[str, float]]:
    """IoU and BDE on ``photos`` of :class:`~s2c_ops.models.blend.S2CNetWithPriors` for each
    ``(geometry_weight, gaicd_weight, temperature, mirror)`` of ``grid``: S2CNet on the photo (and its mirror
    image; its own features: right after fine-tuning too), the weighted priors, the expected-IoU decoding."""
    from ..models.blend import SHORTLIST, blend_scores

    model.eval()
    combos = [(g, p, t, m) for g in grid[0] for p in grid[1] for t in grid[2] for m in grid[3]]
    per_combo = {c: BestCropMetrics() for c in combos}
    for photo in photos:
        views = [model.features(photo.view(v, preprocess).to(device)) for v in (0, 1)]
        for protocol, boxes in candidates(photo).items():
            own = score_view(model, photo, 0, boxes, device, views[0]).cpu()
            mirrored = score_view(model, photo, 1, boxes, device, views[1]).cpu()
            fcdb, gaicd = (prior_scores(p, photo, 0, boxes) for p in (fcdb_prior, gaicd_prior))
            rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
            for (g, p, t, m), metrics in per_combo.items():
                scored = [own, mirrored] if m else [own]
                scores = blend_scores(lambda rows, v=scored: v if rows is None else [s[rows] for s in v],
                                      [(g, fcdb), (p, gaicd)], rois, t, shortlist=SHORTLIST)
                metrics.update(photo.file, "blend", protocol, boxes[int(scores.argmax())], photo.crop,
                               photo.geometry.original)
    out = {}
    for combo, metrics in per_combo.items():
        result = metrics.compute().get("blend", {})
        out[combo] = {f"{p}_{k}": result[p][k] if p in result else float("nan") for p in PROTOCOLS for k in ("iou", "bde")}
    return out


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
    ``eval_split`` for each setting of :data:`BLEND_GRID` (``mirror``: only those with, or without, the
    mirror image; ``None``: both); the best (:func:`choose_blend`) goes to ``out/blend.safetensors``
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
        extra = _write_blend(model, cache, run.device, preprocess, folder, seed=seed, temperature=temperature,
                             mirror=mirror, setting=blend_setting, log=log)
    summary = summary_of(model, run, rows, epochs=epochs, finetune_epochs=finetune_epochs, **extra)
    if run.rank == 0:
        folder.write_summary(summary)
    run.close()
    return summary



def _write_blend(model: S2CNet, cache: Dict[str, List[CachedPhoto]], device: torch.device,
                 preprocess: OfficialPreprocess, folder: RunFolder, *, seed: int, temperature: float,
                 mirror: Optional[bool], setting: Optional[tuple], log) -> Dict[str, Any]:
    """The FCDB geometry prior trained, every blend of :data:`BLEND_GRID` (or the one ``setting``) measured
    on the evaluated photos, the best (mean of the two protocols' IoU) written to ``blend.safetensors``, all
    of them to ``blend.json``."""
    from ..models.blend import S2CNetWithPriors
    from ..models.default import prior

    fcdb_prior = train_fcdb_prior(cache["train"], epochs=20, lr=2e-3, temperature=temperature, seed=seed, log=log)
    gaicd_prior = prior()
    if setting is None:
        results = measure_blends(model, fcdb_prior, gaicd_prior, cache["eval"], device, preprocess)
        chosen = choose_blend(results, mirror)
    else:
        g, p, free_t, ratio_t, face_t, m = setting
        temps = tuple(dict.fromkeys(t for t in (free_t, ratio_t) if t is not None)) or (None,)
        results = measure_blends(model, fcdb_prior, gaicd_prior, cache["eval"], device, preprocess,
                                 ((g,), (p,), temps, (m,)))
        chosen = blend_figures(results, g, p, free_t, ratio_t, m, face_t)
    for combo in ((0.0, 0.0, None, True), (0.0, 0.0, None, False)):
        if combo in results:
            r = results[combo]
            log(f"S2CNet alone (mirror {combo[3]}): ratio given IoU {r['ratio_iou']:.3f} BDE {r['ratio_bde']:.4f}  "
                f"free form IoU {r['free_iou']:.3f} BDE {r['free_bde']:.4f}")
    c = chosen
    log(f"blend (FCDB prior {c['geometry_weight']:g}, GAICD prior {c['gaicd_weight']:g}, temperature "
        f"{c['temperature']}, ratio temperature {c['ratio_temperature']}, face temperature "
        f"{c['face_temperature']} (not measured here), mirror {c['mirror']}): ratio given IoU "
        f"{c['ratio_iou']:.3f} BDE {c['ratio_bde']:.4f}  free form IoU {c['free_iou']:.3f} BDE {c['free_bde']:.4f}")
    S2CNetWithPriors.of(model.cpu(), fcdb_prior, gaicd_prior, geometry_weight=c["geometry_weight"],
                        gaicd_weight=c["gaicd_weight"], temperature=c["temperature"], mirror=c["mirror"],
                        ratio_temperature=c["ratio_temperature"], face_temperature=c["face_temperature"]
                        ).save(folder.path / "blend.safetensors", dtype=torch.float16)
    model.to(device)
    write_json_atomic(folder.path / "blend.json", {"chosen": chosen, "measured": [
        {"geometry_weight": c[0], "gaicd_weight": c[1], "temperature": c[2], "mirror": c[3], **r}
        for c, r in results.items()]})
    log(f"wrote {folder.path / 'blend.safetensors'}")
    return {"blend": chosen}
