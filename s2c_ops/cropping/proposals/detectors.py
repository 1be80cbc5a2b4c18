"""Object detectors as proposers: torchvision's detection models, with weights the user brings."""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence

import torch
from torch import Tensor

from .base import Proposer


class TorchvisionDetector(Proposer):
    """Adapter for torchvision detection models (Faster R-CNN, RetinaNet, FCOS, SSD, ...).

    Args:
        model: a detection model in torchvision's inference interface: called with a list of
            ``[3, H, W]`` images in [0, 1], it returns one dict per image with ``"boxes"``
            (``[L, 4]`` ``(x1, y1, x2, y2)`` in the input's pixels) and ``"scores"`` (``[L]``). E.g.
            ``torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(weights="DEFAULT")``.
            The user brings the weights; the model does its own normalisation and resizing.
        score_threshold: detections scoring below it are dropped.
        labels: keep only these class labels (``None``: all).

    The model is put in eval mode when called (torchvision detectors need it to return detections)
    and runs on its own device (the images are moved there); the boxes come back on the images'
    device, ranked by score (best first), then :func:`pad_boxes` fills up with whole-image boxes.
    """

    def __init__(self, model: Callable[..., Any], score_threshold: float = 0.3, labels: Optional[Sequence[int]] = None) -> None:
        if not callable(model):
            raise TypeError(f"model must be a callable detection model, got {type(model).__name__}")
        score_threshold = float(score_threshold)
        if not math.isfinite(score_threshold):
            raise ValueError(f"score_threshold must be finite, got {score_threshold}")
        self.model = model
        self.score_threshold = score_threshold
        self.labels = None if labels is None else tuple(int(v) for v in labels)

    def _model_device(self, default: torch.device) -> torch.device:
        params = getattr(self.model, "parameters", None)
        if callable(params):
            for p in params():
                return p.device
        return default

    def propose(self, images: Tensor) -> List[Tensor]:
        if isinstance(self.model, torch.nn.Module) and self.model.training:
            self.model.eval()
        device = self._model_device(images.device)
        outputs = self.model(list(images.to(device)))
        if not isinstance(outputs, (list, tuple)) or len(outputs) != images.shape[0]:
            raise RuntimeError(
                f"the detection model must return a list of {images.shape[0]} dicts, got {type(outputs).__name__}"
                + (f" of length {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
            )
        ranked = []
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or "boxes" not in out or "scores" not in out:
                raise RuntimeError(f"detection output {i} must be a dict with 'boxes' and 'scores'")
            boxes = out["boxes"].detach().to(images.device, torch.float32).reshape(-1, 4)
            scores = out["scores"].detach().to(images.device, torch.float32).reshape(-1)
            if scores.shape[0] != boxes.shape[0]:
                raise RuntimeError(f"detection output {i} has {boxes.shape[0]} boxes but {scores.shape[0]} scores")
            keep = scores >= self.score_threshold
            if self.labels is not None and "labels" in out:
                labels = out["labels"].detach().to(images.device).reshape(-1)
                keep &= torch.isin(labels, torch.tensor(self.labels, device=images.device, dtype=labels.dtype))
            boxes, scores = boxes[keep], scores[keep]
            order = torch.sort(scores, descending=True, stable=True).indices
            ranked.append(boxes[order])
        return ranked

    def extra_repr(self) -> str:
        name = type(self.model).__name__
        return f"model={name}, score_threshold={self.score_threshold}" + (
            f", labels={self.labels}" if self.labels is not None else ""
        )
