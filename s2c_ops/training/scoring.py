"""S2CNet on FCDB's cached photos (:mod:`.features`): both protocols' candidates, the scores of one view,
the training loss of a photo and the per-epoch IoU / BDE."""
from typing import Callable, Dict, List, Optional

import torch

from ..cropping.candidates import grid_anchors, ratio_anchors
from ..data.metrics import iou
from ..evaluation import BestCropMetrics
from ..models.s2cnet import S2CNet
from ..ops.boxes import clamp_to_image, flip_boxes
from .features import CachedPhoto
from .losses import listwise_loss, pair_loss

PROTOCOLS = ("ratio", "free")


def candidates(photo: CachedPhoto) -> Dict[str, torch.Tensor]:
    """Both protocols' candidates of a photo, in its pixels: ``"ratio"`` (the human crop's aspect ratio, as
    the Cropper makes them) and ``"free"`` (the official grid; left out where it has none, for photos past
    about 4:1)."""
    height, width = photo.geometry.original
    x1, y1, x2, y2 = photo.crop.tolist()
    sets = {"ratio": ratio_anchors(height, width, (x2 - x1) / (y2 - y1)), "free": grid_anchors(height, width)}
    return {protocol: boxes for protocol, boxes in sets.items() if len(boxes)}


def iou_targets(boxes: torch.Tensor, photo: CachedPhoto) -> torch.Tensor:
    """Each of ``boxes``' IoU with the photo's human crop (float32)."""
    return torch.as_tensor(iou(boxes.numpy(), photo.crop[None].numpy()), dtype=torch.float32)


def protocol_figures(metrics: BestCropMetrics, name: str) -> Dict[str, float]:
    """``ratio_iou``, ``ratio_bde``, ``free_iou`` and ``free_bde`` of the method ``name`` (NaN where a
    protocol has no photo)."""
    result = metrics.compute().get(name, {})
    return {f"{p}_{k}": result[p][k] if p in result else float("nan") for p in PROTOCOLS for k in ("iou", "bde")}


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
    model_boxes = clamp_to_image(model_boxes, (h, w))
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
        t = iou_targets(boxes, photo)
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
                    features: Optional[Callable[[CachedPhoto], torch.Tensor]] = None) -> Dict[str, float]:
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
    return protocol_figures(metrics, "model")
