"""The geometry prior: a crop scorer that never looks at pixels (``--model prior``).

It scores a candidate crop from geometry alone: the crop box and the image's object boxes, normalised by
the image size. Like S2CNet's spatial branch it looks at where the crop sits and how it treats each
object (kept whole, cut, left out). The shipped weights (``s2c_ops/weights/geometry_prior.safetensors``)
are trained on the human ratings (MOS) of the GAICv1 train images (``s2c train-prior``); the default
model (:mod:`s2c_ops.models.blend`) uses this network twice, with those weights and with weights trained
on FCDB's human crops.

Call it like S2CNet: ``prior(images, crop_boxes, object_boxes) -> Tensor[K]``; the pixels of ``images``
are not read, only their size. Object boxes that cover the whole image (the proposers' padding) carry no
information and are ignored.
"""
from dataclasses import dataclass
from importlib import resources
from typing import Optional

import torch
from torch import Tensor, nn

from ..ops.boxes import BoxesLike, clamp_to_image, image_extent, kept_share, overlap, sides
from ..precision import full_precision
from .scorer import ScorerModule, check_scorer_inputs
from .weights import weights_format

WEIGHTS = "geometry_prior.safetensors"
CROP_FEATURES = 12
OBJECT_FEATURES = 12


@dataclass(frozen=True)
class PriorConfig:
    bbox_num: int = 10
    hidden: int = 64
    #: The prior reads no pixels; its proposer does, and finds more (faces) in an antialiased image.
    antialias: bool = True

    def __post_init__(self) -> None:
        for f in ("bbox_num", "hidden"):
            value = getattr(self, f)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PriorConfig.{f} must be a positive int, got {value!r}")


def crop_features(crops: Tensor) -> Tensor:
    """(K, 4) crops normalised to the unit square -> (K, CROP_FEATURES)."""
    x1, y1, x2, y2 = crops.unbind(-1)
    w, h = (x2 - x1).clamp(min=1e-4), (y2 - y1).clamp(min=1e-4)
    return torch.stack(
        [x1, y1, 1 - x2, 1 - y2, w, h, w * h, torch.log(w / h), (x1 + x2) / 2 - 0.5, (y1 + y2) / 2 - 0.5,
         (x1 - (1 - x2)).abs(), (y1 - (1 - y2)).abs()],
        dim=-1,
    )


def object_features(crops: Tensor, objects: Tensor) -> Tensor:
    """(K, 4) crops and (K, D, 4) objects, normalised -> (K, D, OBJECT_FEATURES): each object's place
    in the image and in the crop, and how much of it the crop keeps."""
    c = crops[:, None, :]
    ox1, oy1, ox2, oy2 = objects.unbind(-1)
    cx1, cy1 = c[..., 0], c[..., 1]
    (ow, oh), (cw, ch) = sides(objects), sides(c)
    iw, ih = overlap(c, objects)
    kept = kept_share(c, objects)  # share of the object inside the crop
    fill = kept_share(objects, c)  # share of the crop the object fills
    rel_x = ((ox1 + ox2) / 2 - cx1) / cw - 0.5
    rel_y = ((oy1 + oy2) / 2 - cy1) / ch - 0.5
    cut = ((kept > 0) & (kept < 0.999)).to(crops.dtype)
    return torch.stack(
        [ow * oh, (ox1 + ox2) / 2 - 0.5, (oy1 + oy2) / 2 - 0.5, kept, fill, rel_x, rel_y, cut,
         iw / ow, ih / oh, (kept * ow * oh).sqrt(), torch.log(ow / oh)],
        dim=-1,
    )


def normalised(boxes: Tensor, height: int, width: int) -> Tensor:
    """(..., 4) boxes in pixels of a ``height`` x ``width`` image -> the unit square (what the prior reads)."""
    return boxes / image_extent(boxes, (height, width)).repeat(2)


@weights_format("s2cnet-geometry-prior/1", PriorConfig, "geometry prior")
class GeometryPrior(ScorerModule):
    """Scores crops from geometry: per object, an MLP of the crop's and the object's features; the
    objects are pooled (mean and max over the real ones) and an MLP of crop features and the pooled
    objects gives the score."""

    reads_pixels = False

    def __init__(self, config: Optional[PriorConfig] = None) -> None:
        super().__init__()
        self.config = config or PriorConfig()
        h = self.config.hidden
        self.object_mlp = nn.Sequential(
            nn.Linear(CROP_FEATURES + OBJECT_FEATURES, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Linear(CROP_FEATURES + 2 * h + 1, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                  nn.Linear(h, 1))

    def score_normalised(self, crops: Tensor, objects: Tensor, real: Tensor) -> Tensor:
        """``crops`` (K, 4) and ``objects`` (K, D, 4) in unit-square coordinates, ``real`` (K, D)
        marks the objects to use -> (K,) scores, in float32 under autocast too (a few small layers whose
        scores of neighbouring crops differ in the third decimal)."""
        with full_precision(crops.device):
            return self._score_normalised(crops.float(), objects.float(), real)

    def _score_normalised(self, crops: Tensor, objects: Tensor, real: Tensor) -> Tensor:
        cf = crop_features(crops)
        of = object_features(crops, objects)
        per_object = self.object_mlp(torch.cat([cf[:, None].expand(-1, of.shape[1], -1), of], dim=-1))
        weight = real.to(per_object.dtype)[..., None]
        count = weight.sum(1)
        mean = (per_object * weight).sum(1) / count.clamp(min=1)
        peak = per_object.masked_fill(weight == 0, 0).amax(1)
        has = (count > 0).to(cf.dtype)
        return self.head(torch.cat([cf, mean, peak, has], dim=-1)).squeeze(-1)

    def score_image(self, crops: Tensor, objects: Tensor, real: Optional[Tensor] = None) -> Tensor:
        """Scores of one image's ``crops`` (K, 4) with its ``objects`` (D, 4), both in the unit square;
        ``real`` (D,) marks the objects to use (default: :func:`real_objects`)."""
        k = len(crops)
        real = real_objects(objects) if real is None else real
        return self.score_normalised(crops, objects[None].expand(k, -1, -1), real[None].expand(k, -1))

    def forward(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike) -> Tensor:
        d = self.config.bbox_num
        crops, objects = check_scorer_inputs(images, crop_boxes, object_boxes, d)
        b, _, height, width = images.shape
        crops, objects = crops.to(torch.float32), objects.to(torch.float32)
        crop_n = normalised(crops[:, 1:], height, width)
        obj_n = normalised(objects[:, 1:], height, width).clamp(0, 1).reshape(b, d, 4)[crops[:, 0].long()]
        return self.score_normalised(crop_n, obj_n, real_objects(obj_n))

    def score_sets(self, images: Tensor, crops: Tensor, objects: Tensor) -> Tensor:
        """The scores (B, N) of ``crops`` (B, N, 4) with ``objects`` (B, bbox_num, 4), boxes in pixels of
        ``images`` (only their size is read), without input checks: the traceable form of the call."""
        b, n = crops.shape[:2]
        d = objects.shape[1]
        height, width = images.shape[-2:]
        crop_n = normalised(crops.float(), height, width)
        obj_n = normalised(clamp_to_image(objects.float(), (height, width)), height, width).clamp(0, 1)
        real = real_objects(obj_n)
        scores = self.score_normalised(crop_n.flatten(0, 1), obj_n[:, None].expand(b, n, d, 4).flatten(0, 1),
                                       real[:, None].expand(b, n, d).flatten(0, 1))
        return scores.reshape(b, n)

    @classmethod
    def default(cls) -> "GeometryPrior":
        """The weights shipped with the package."""
        with resources.as_file(resources.files("s2c_ops") / "weights" / WEIGHTS) as path:
            return cls.load(path)


def real_objects(objects: Tensor, tol: float = 1e-3) -> Tensor:
    """(..., 4) unit-square boxes -> bool mask of those that are not (nearly) the whole image."""
    whole = (objects[..., :2] <= tol).all(-1) & (objects[..., 2:] >= 1 - tol).all(-1)
    area = (objects[..., 2] - objects[..., 0]) * (objects[..., 3] - objects[..., 1])
    return ~whole & (area > 0)
