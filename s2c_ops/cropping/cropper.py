"""Cropper: the best crops of photos for given aspect ratios, in the photos' own pixels.

Per image: the official pre-processing, candidate crops of each ratio (made in original pixels so the
ratio is exact there), object boxes from a proposer, one batched scoring call per group of images that
share a resized size (S2CNet's RoDAlign samples the whole feature map, so images are never padded).
"""
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .candidates import parse_ratio, ratio_anchors
from ..models.s2cnet import S2CNet
from .proposals import GivenBoxes, Proposer, get_proposer
from .transforms import ImageLike, OfficialPreprocess, Resize

RatioLike = Union[float, str]


@dataclass
class CropResult:
    """The ``top_k`` best crops of one image for one ratio, best first, in original pixels."""

    ratio: float
    boxes: Tensor  # (k, 4) float (x1, y1, x2, y2)
    scores: Tensor  # (k,)


class Cropper:
    """``Cropper(model, proposer).crop(images, ratio=16/9, top_k=1)``.

    ``model(images, crop_rois, object_rois) -> Tensor[K]`` is any crop scorer with S2CNet's call
    signature: an :class:`~s2c_ops.S2CNet`, or by default (``None``) the package's geometry prior
    (:class:`~s2c_ops.prior.GeometryPrior`, shipped weights). It needs ``bbox_num`` object
    boxes per image, read from ``model.config.bbox_num`` unless ``num_boxes`` is given. An S2CNet is
    used through its :meth:`~s2c_ops.S2CNet.fused` inference copy, made here: later changes to the
    model (weights, device) do not reach the Cropper. ``proposer`` defaults to the offline saliency
    proposer.
    """

    def __init__(
        self,
        model: Optional[Callable[..., Tensor]] = None,
        proposer: Optional[Proposer] = None,
        *,
        preprocess: Optional[OfficialPreprocess] = None,
        num_boxes: Optional[int] = None,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if model is None:
            from ..models.prior import GeometryPrior

            model = GeometryPrior.default()
        self.model = model.fused() if isinstance(model, S2CNet) else model
        self.proposer = proposer if proposer is not None else get_proposer("saliency")
        self.preprocess = preprocess or OfficialPreprocess()
        self.num_boxes = num_boxes if num_boxes is not None else model.config.bbox_num
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        params = getattr(self.model, "parameters", None)
        first = next(params(), None) if params else None
        return first.device if first is not None else torch.device("cpu")

    def crop(self, images: Union[ImageLike, Sequence[ImageLike]], ratio: RatioLike = 1.0, top_k: int = 1) -> List[CropResult]:
        """The ``top_k`` best crops of ``ratio`` for each image (fewer when fewer candidates exist)."""
        value = parse_ratio(ratio)
        return [r[value] for r in self.crop_ratios(images, [value], top_k)]

    @torch.no_grad()
    def crop_ratios(
        self, images: Union[ImageLike, Sequence[ImageLike]], ratios: Sequence[RatioLike], top_k: int = 1
    ) -> List[Dict[float, CropResult]]:
        """For each image, ``{ratio: CropResult}``; all ratios of an image are scored in one call."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        values = [parse_ratio(r) for r in ratios]
        if not values:
            raise ValueError("give at least one ratio")
        if isinstance(images, Tensor) and images.dim() == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        prepared = [self.preprocess.resize(image) for image in images]
        candidates = [self._candidates(i, geometry, values) for i, (_, geometry) in enumerate(prepared)]

        groups: Dict[tuple, List[int]] = defaultdict(list)
        for i, (resized, _) in enumerate(prepared):
            groups[tuple(resized.shape[-2:])].append(i)
        results: List[Optional[Dict[float, CropResult]]] = [None] * len(images)
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                scores = self._score([prepared[i] for i in batch], [candidates[i] for i in batch])
                for i, image_scores in zip(batch, scores):
                    results[i] = self.best_crops(candidates[i], image_scores, values, top_k)
        return results

    def _candidates(self, index: int, geometry: Resize, ratios: List[float]) -> List[Tensor]:
        h, w = geometry.original
        out = []
        for ratio in ratios:
            try:
                out.append(ratio_anchors(h, w, ratio))
            except ValueError as e:
                raise ValueError(f"image {index} ({w}x{h}): {e}") from None
        return out

    @torch.no_grad()
    def score_candidates(self, images: Tensor, ratio: RatioLike) -> Tuple[Tensor, Tensor]:
        """For a (B, 3, H, W) batch of RGB values in [0, 1] (one size, any device): the candidate crops
        of ``ratio`` in its pixels, (N, 4), and their scores, (B, N), both on the images' device.
        Everything stays on the device (the batched path of the Kornia augmentation)."""
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images must be a float (B, 3, H, W) batch in [0, 1], got {tuple(images.shape)} {images.dtype}")
        h, w = images.shape[-2:]
        boxes = ratio_anchors(h, w, parse_ratio(ratio)).to(images.device)
        resized, geometry = self.preprocess.resize_batch(images.float() * 255)
        scores = self.score_resized(resized, geometry, [boxes] * len(images))
        return boxes, torch.stack(scores).to(images.device)

    def _score(self, prepared, candidates) -> List[Tensor]:
        resized = torch.stack([r for r, _ in prepared])
        scores = self.score_resized(resized, [g for _, g in prepared], [torch.cat(b) for b in candidates])
        return [s.float().cpu() for s in scores]

    def score_resized(
        self, resized: Tensor, geometry, boxes: List[Tensor], objects: Optional[List[Tensor]] = None
    ) -> List[Tensor]:
        """Scores of ``boxes`` (original pixels, one tensor per image) on ``resized`` images (one size,
        values in [0, 255] as :meth:`OfficialPreprocess.resize` gives them); ``geometry`` is their
        Resize, or one per image. ``objects`` (model pixels, one tensor per image) replace the
        proposer's boxes when given."""
        device = self.device
        resized = resized.to(device)
        geometries = geometry if isinstance(geometry, list) else [geometry] * len(boxes)
        height, width = resized.shape[-2:]
        bounds = torch.tensor([width, height, width, height], dtype=torch.float32, device=device)
        crop_boxes = [torch.minimum(g.boxes_to_model(b.to(device)), bounds) for g, b in zip(geometries, boxes)]
        if objects is None:
            objects = self.proposer(self.preprocess.unnormalised(resized), self.num_boxes)
        else:
            objects = GivenBoxes([o.to(device) for o in objects])(self.preprocess.unnormalised(resized), self.num_boxes)
        scores = self.model(self.preprocess.normalise(resized), crop_boxes, objects)
        return list(scores.split([len(b) for b in crop_boxes]))

    @staticmethod
    def best_crops(candidates: List[Tensor], scores: Tensor, ratios: List[float], top_k: int) -> Dict[float, CropResult]:
        """The ``top_k`` best of each ratio's candidates, given the scores of all of them in order."""
        out = {}
        for ratio, boxes, s in zip(ratios, candidates, scores.split([len(b) for b in candidates])):
            order = torch.argsort(s, descending=True, stable=True)[:top_k]
            out[ratio] = CropResult(ratio, boxes[order], s[order])
        return out
