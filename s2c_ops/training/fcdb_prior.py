"""The geometry prior's network trained on FCDB's human crops (the blend's FCDB prior, :mod:`.blend_search`)."""
import math
import random
from typing import Callable, List

import torch

from ..models.prior import GeometryPrior, PriorConfig, normalised
from ..ops.boxes import flip_boxes
from .features import CachedPhoto
from .losses import listwise_loss
from .scoring import candidates, iou_targets


def prior_scores(prior: GeometryPrior, photo: CachedPhoto, view: int, boxes: torch.Tensor) -> torch.Tensor:
    """A geometry prior's scores of ``boxes`` (original pixels) on one view of a photo, with its cached
    object boxes."""
    crops = normalised(boxes.float(), *photo.geometry.original)
    if view:
        crops = flip_boxes(crops, 1.0)
    return prior.score_image(crops, normalised(photo.objects[view].float(), *photo.geometry.resized).clamp(0, 1))


def train_fcdb_prior(photos: List[CachedPhoto], *, epochs: int, lr: float, temperature: float, seed: int,
                     log: Callable[[str], None]) -> GeometryPrior:
    """The geometry prior's network trained on FCDB's human crops: the same listwise loss on both
    protocols' candidates as S2CNet, on geometry alone (crop boxes and the cached object boxes). Its
    initialisation draws from torch's global generator."""
    prior = GeometryPrior(PriorConfig())
    optimiser = torch.optim.Adam(prior.parameters(), lr=lr, weight_decay=1e-5)
    rng = random.Random(seed)
    sets = [(photo, [(boxes, iou_targets(boxes, photo)) for boxes in candidates(photo).values()]) for photo in photos]
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
