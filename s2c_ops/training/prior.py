"""Training and evaluating the geometry prior on GAICD ratings (geometry only: no pixels needed).

``s2c train-prior --data DIR --out FILE`` runs :func:`train_prior`: a seeded split of the train images
into a fitting part and a validation part, a within-image pairwise ranking loss (weighted by the MOS
gap) plus a small regression term on the normalised MOS, Adam with a cosine schedule. It prints the
validation metrics beside two simple rules measured on the same images.
"""
import random
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.gaicd import GAICD, normalise_mos
from ..data.metrics import GAICMetrics
from ..models.prior import GeometryPrior, PriorConfig, normalised, real_objects
from ..ops.boxes import overlap, sides


def _normalised(item: Dict) -> Dict[str, Tensor]:
    h, w = item["size"]
    return {
        "id": item["id"],
        "crops": normalised(item["crop_boxes"].float(), h, w),
        "objects": normalised(item["object_boxes"].float(), h, w).clamp(0, 1),
        "mos": item["mos"].float(),
    }


def load_geometry(root, split: str, ids: Optional[Sequence[str]] = None) -> List[Dict[str, Tensor]]:
    """Every image of ``split`` (or ``ids``) as unit-square crops, objects and MOS."""
    dataset = GAICD(root, split, pixels=False, ids=list(ids) if ids is not None else None)
    return [_normalised(dataset[i]) for i in range(len(dataset))]


def prior_scores(model: GeometryPrior, image: Dict[str, Tensor]) -> Tensor:
    """The prior's scores of one image of :func:`load_geometry`."""
    return model.score_image(image["crops"], image["objects"])


def kept_object_area(image: Dict[str, Tensor]) -> Tensor:
    """The "keep the objects" rule: the share of the objects' total area each crop keeps."""
    c, o = image["crops"], image["objects"][real_objects(image["objects"])]
    (iw, ih), (w, h) = overlap(c[:, None], o[None]), sides(o)
    return (iw * ih).sum(1) / (w * h).sum().clamp(min=1e-8)


def crop_area(image: Dict[str, Tensor]) -> Tensor:
    """The "largest crop" rule."""
    c = image["crops"]
    return (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])


def evaluate(score: Callable[[Dict[str, Tensor]], Tensor], images: Sequence[Dict[str, Tensor]]) -> GAICMetrics:
    metrics = GAICMetrics()
    with torch.no_grad():
        for image in images:
            metrics.update(image["id"], score(image), image["mos"])
    return metrics


def ranking_loss(scores: Tensor, mos: Tensor) -> Tensor:
    """Mean over ordered pairs (i better than j) of softplus(s_j - s_i), weighted by the MOS gap."""
    gap = mos[:, None] - mos[None, :]
    weight = gap.clamp(min=0)
    pairs = F.softplus(scores[None, :] - scores[:, None])
    return (pairs * weight).sum() / weight.sum().clamp(min=1e-8)


def train_prior(
    root,
    out,
    *,
    epochs: int = 40,
    seed: int = 0,
    val_fraction: float = 0.2,
    hidden: int = 64,
    lr: float = 2e-3,
    images_per_step: int = 16,
    object_dropout: float = 0.2,
    regression_weight: float = 0.1,
    log: Callable[[str], None] = print,
) -> Dict[str, Dict[str, float]]:
    """Trains the prior on the GAICD train split and saves it to ``out``; returns the validation
    metrics of the model and of the two rules on the same images."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    torch.manual_seed(seed)
    images = load_geometry(root, "train")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(val_fraction * len(images)))
    val = [images[i] for i in order[:n_val]]
    fit = [images[i] for i in order[n_val:]]
    log(f"geometry prior: {len(fit)} images to fit, {len(val)} to validate (seed {seed})")

    model = GeometryPrior(PriorConfig(hidden=hidden))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    rng = random.Random(seed)
    for epoch in range(epochs):
        model.train()
        shuffled = fit[:]
        rng.shuffle(shuffled)
        total = 0.0
        for start in range(0, len(shuffled), images_per_step):
            batch = shuffled[start : start + images_per_step]
            loss = 0.0
            for image in batch:
                crops, objects, mos = image["crops"], image["objects"], image["mos"]
                real = real_objects(objects) & (torch.rand(len(objects)) >= object_dropout)
                scores = model.score_image(crops, objects, real)
                loss = loss + ranking_loss(scores, mos) + regression_weight * F.smooth_l1_loss(scores, normalise_mos(mos))
            loss = loss / len(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        line = f"epoch {epoch + 1}/{epochs} loss {total / len(fit):.4f}"
        if val and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
            model.eval()
            m = evaluate(lambda im: prior_scores(model, im), val).compute()
            line += f"  val srcc {m['srcc']:.3f} acc5 {m['acc5']:.1f} acc10 {m['acc10']:.1f}"
        log(line)
    model.eval()
    model.save(out)
    results = {}
    if val:
        for name, score in (("prior", lambda im: prior_scores(model, im)), ("keep objects", kept_object_area),
                            ("largest crop", crop_area)):
            m = evaluate(score, val).compute()
            results[name] = {k: m[k] for k in ("srcc", "pcc", "acc5", "acc10", "wacc5", "wacc10")}
        log(f"validation ({len(val)} train images held out):")
        for name, m in results.items():
            log(f"  {name:13s} srcc {m['srcc']:.3f}  acc5 {m['acc5']:.1f}  acc10 {m['acc10']:.1f}")
    log(f"saved {out}")
    return results
