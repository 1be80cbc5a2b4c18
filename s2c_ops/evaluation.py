"""Evaluating crop scorers: the loops ``s2c eval`` and training share.

* GAICD (rated crops): :func:`evaluate_gaicd`, the published ranking metrics (SRCC, PCC, Acc, wAcc).
* FCDB (one human crop per photo): :func:`evaluate_fcdb`, IoU and BDE of the top-1 crop under two
  protocols, ``"ratio"`` (the candidates of the human crop's aspect ratio, as ``Cropper.crop(photo, ratio)``
  makes them) and ``"free"`` (the official 12x12 grid of the photo, as ``Cropper.crop(photo, "free")`` scores it),
  with the whole photo and the centred largest crop of the ratio as baselines on the same photos.
"""
import functools
import math
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from torch import Tensor

from .cropping.candidates import FREE, grid_anchors
from .cropping.images import image_to_tensor, load_image, to_rgb
from .data.metrics import GAICMetrics, bde, iou

PROTOCOLS = ("ratio", "free")
#: The baselines :func:`evaluate_fcdb` measures beside the model, and the protocol of each.
BASELINES = {"whole photo": "free", "centred": "ratio"}


def evaluate_gaicd(scorer: Callable, dataset: Iterable[Dict[str, Any]], device: torch.device,
                   progress: Callable[[Iterable], Iterable] = iter) -> GAICMetrics:
    """GAICD metrics of ``scorer`` on a pixel dataset (:class:`~s2c_ops.data.GAICD`), one image per call,
    the annotated crops in file order."""
    metrics = GAICMetrics()
    with torch.no_grad():
        for item in progress(dataset):
            scores = scorer(item["image"][None].to(device), [item["crop_boxes"].float().to(device)],
                            [item["object_boxes"].float().to(device)])
            metrics.update(item["id"], scores.float().cpu(), item["mos"])
    return metrics


class BestCropMetrics:
    """IoU and BDE of one chosen crop per photo and protocol, for several croppers (the model, the
    baselines). ``to_dict()`` is the ``s2c eval --json`` layout on FCDB."""

    def __init__(self) -> None:
        self.photos: Dict[str, Dict[str, Any]] = {}

    def update(self, file: str, method: str, protocol: str, box: torch.Tensor, truth: torch.Tensor,
               size) -> None:
        height, width = size
        b, t = box.double().numpy(), truth.double().numpy()
        entry = {"box": [round(float(v), 2) for v in b], "iou": float(iou(b, t)),
                 "bde": float(bde(b, t, height=height, width=width))}
        self.photos.setdefault(file, {}).setdefault(method, {})[protocol] = entry

    def compute(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """``{method: {protocol: {"iou", "bde", "photos"}}}``, means over photos."""
        out: Dict[str, Dict[str, Dict[str, float]]] = {}
        for methods in self.photos.values():
            for method, protocols in methods.items():
                for protocol, e in protocols.items():
                    acc = out.setdefault(method, {}).setdefault(protocol, {"iou": [], "bde": []})
                    acc["iou"].append(e["iou"])
                    acc["bde"].append(e["bde"])
        return {m: {p: {"iou": math.fsum(v["iou"]) / len(v["iou"]), "bde": math.fsum(v["bde"]) / len(v["bde"]),
                        "photos": len(v["iou"])} for p, v in ps.items()} for m, ps in out.items()}

    def to_dict(self) -> Dict[str, Any]:
        return {"metrics": self.compute(), "photos": self.photos}


def _detail(cropper, path: str, geometry, factor: float) -> Tensor:
    """The photo at ``path`` for the proposer's second look (a Detail), read as the dataset reads it."""
    pixels = image_to_tensor(to_rgb(load_image(path, apply_exif_orientation=False)), apply_exif_orientation=False)
    return cropper._detail(pixels, geometry)(factor)


def evaluate_fcdb(cropper, dataset, *, method: str = "model", baselines: bool = True,
                  progress: Callable[[Iterable], Iterable] = iter,
                  metrics: Optional[BestCropMetrics] = None) -> BestCropMetrics:
    """IoU and BDE of ``cropper``'s top-1 crop on each photo of ``dataset`` (:class:`~s2c_ops.data.FCDB`
    with pixels) under both protocols, with the baselines (:data:`BASELINES`) unless ``baselines=False``.
    Photos whose human crop was dropped are left out, and from free form those the official grid has no
    candidate for (past about 4:1). Photos are scored ``cropper.batch_size`` at a time.
    The dataset must resize the photos as the Cropper does (``FCDB(..., preprocess=cropper.preprocess)``):
    else ``ValueError``, as the figures would not be the Cropper's."""
    resize = getattr(dataset, "preprocess", None)
    if resize is not None and vars(resize) != vars(cropper.preprocess):
        raise ValueError(f"the dataset resizes photos unlike the Cropper ({vars(resize)} against "
                         f"{vars(cropper.preprocess)}): give it preprocess=cropper.preprocess")
    metrics = metrics if metrics is not None else BestCropMetrics()
    batch: List[Dict[str, Any]] = []

    def flush() -> None:
        candidates = []
        details = [functools.partial(_detail, cropper, item["path"], item["geometry"]) if "path" in item else None
                   for item in batch]
        found = cropper._find_objects([item["resized"] for item in batch], details)
        for item, (_, faces) in zip(batch, found):
            truth = item["crop"]
            ratio = float((truth[2] - truth[0]) / (truth[3] - truth[1]))
            geometry = item["geometry"]
            # Free form only where the official grid has candidates (none past about 4:1).
            ratios = [ratio, FREE] if len(grid_anchors(*geometry.original)) else [ratio]
            candidates.append(cropper._candidates(geometry, ratios, faces=geometry.boxes_to_original(faces)))
        scores = cropper._score_images([item["resized"] for item in batch], [item["geometry"] for item in batch],
                                       candidates, found=found)
        for item, sets, s in zip(batch, candidates, scores):
            for protocol, boxes, part in zip(("ratio", "free"), sets, s.split([len(b) for b in sets])):
                best = boxes[int(torch.argmax(part))]
                metrics.update(item["file"], method, protocol, best, item["crop"], item["size"])
            if baselines:
                height, width = item["size"]
                whole = torch.tensor([0.0, 0.0, float(width), float(height)])
                if len(sets) > 1:
                    metrics.update(item["file"], "whole photo", "free", whole, item["crop"], item["size"])
                metrics.update(item["file"], "centred", "ratio", sets[0][0], item["crop"], item["size"])
        batch.clear()

    with torch.no_grad():
        for item in progress(dataset):
            if item["crop"] is None:
                continue
            batch.append(item)
            if len(batch) == cropper.batch_size:
                flush()
        if batch:
            flush()
    return metrics


def format_fcdb(result: Dict[str, Dict[str, Dict[str, float]]]) -> List[str]:
    """The FCDB metrics as a Markdown table (IoU / BDE per protocol)."""
    lines = ["| cropper | ratio given: IoU / BDE | free form: IoU / BDE | photos |", "| --- | ---: | ---: | ---: |"]
    for method, protocols in result.items():
        cells = [f"{protocols[p]['iou']:.3f} / {protocols[p]['bde']:.4f}" if p in protocols else "" for p in PROTOCOLS]
        photos = max(v["photos"] for v in protocols.values())
        lines.append(f"| {method} | {cells[0]} | {cells[1]} | {photos} |")
    return lines
