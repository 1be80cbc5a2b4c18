"""Cropper: the best crops of photos for given aspect ratios, in the photos' own pixels.

The public surface is three calls, all taking photos in the package's one convention (a PIL image, a uint8
tensor in 0..255 or a float tensor in [0, 1]; ``(3, H, W)``, a ``(B, 3, H, W)`` batch or a list) and giving
boxes in the photos' pixels: :meth:`Cropper.crop`, :meth:`Cropper.crop_ratios` and :meth:`Cropper.score`.

Per photo: the one image path (:mod:`~s2c_ops.cropping.images`: upright, 8-bit RGB), the official
pre-processing, candidate crops of each ratio (made in the photo's pixels so the ratio is exact there),
object boxes from a proposer, and one batched scoring call per group of photos that share a resized size
(S2CNet's RoDAlign samples the whole feature map, so images are never padded). The private scoring steps
are shared with ``s2c crop``, ``s2c eval``, ``s2c export`` and ``AestheticCrop``.
"""
import contextlib
import copy
import functools
import numbers
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torch import Tensor, nn

from ..models.registry import create_model
from ..models.scorer import ability, inference_copy, module_device
from ..ops.boxes import clamp_to_image, first_outside
from .candidates import FREE, Ratio, candidate_crops, parse_ratio, ratio_anchors
from .face_rule import FaceRule
from .images import (ImageLike, Photos, draft, drafts_to, image_to_tensor, photo_list, reduced, reopened,
                     turns_sideways)
from .pixels import check_unit_range
from .proposals import Detail, GivenBoxes, ProposedObjects, Proposer, check_num_boxes, create_proposer
from .transforms import OfficialPreprocess, Resize, finer

#: A ratio as callers write it: width / height as a number or text (``16/9``, ``"16:9"``), or ``"free"``.
RatioLike = Union[float, str]
DeviceLike = Union[str, torch.device]


@dataclass
class CropResult:
    """The ``top_k`` best crops of one photo for one ratio, best first, in the photo's pixels. ``ratio`` is
    the ratio asked for, parsed (width / height, or ``"free"``)."""

    ratio: Ratio
    boxes: Tensor  # (k, 4) float (x1, y1, x2, y2)
    scores: Tensor  # (k,)


@functools.lru_cache(maxsize=64)
def _anchors(height: int, width: int, ratio: float, device: torch.device) -> Tensor:
    """:func:`ratio_anchors` on ``device``, made once (a copy to a GPU makes the host wait). Never written to."""
    return ratio_anchors(height, width, ratio).to(device)


@dataclass(frozen=True)
class _Detail:
    """A photo's :data:`~s2c_ops.cropping.proposals.Detail`: ``pixels`` (the photo of ``geometry``, ``[1, 3, H,
    W]``, at any resolution; uint8, or float in [0, 1]) at the factor asked for (:func:`finer`), as float in
    [0, 1] on ``device``."""

    pixels: Tensor
    geometry: Resize
    device: torch.device

    def __call__(self, factor: float) -> Tensor:
        pixels = finer(self.pixels, self.geometry, factor).to(self.device)
        return pixels.float().div_(255.0) if pixels.dtype == torch.uint8 else pixels.float().clamp(0.0, 1.0)


def _whole(name: str, value: int) -> int:
    """``value`` as an int, or ``ValueError`` naming ``name`` unless it is a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def _check_boxes(boxes: Tensor, index: int) -> Tensor:
    if not isinstance(boxes, Tensor):
        raise TypeError(f"boxes of photo {index} must be a Tensor[K, 4], got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[1] != 4 or not len(boxes):
        raise ValueError(f"boxes of photo {index} must have shape (K, 4), K >= 1, rows (x1, y1, x2, y2); "
                         f"got {tuple(boxes.shape)}")
    boxes = boxes.detach().float().cpu()
    if not torch.isfinite(boxes).all() or not ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all():
        raise ValueError(f"boxes of photo {index} must be finite with x2 > x1 and y2 > y1")
    return boxes


def _check_overlap(boxes: Tensor, index: int, size: Tuple[int, int]) -> None:
    """``ValueError`` naming the first of ``boxes`` (as given) that lies wholly outside the photo of ``size``
    (height, width); the parts of the others outside it are cut off where they are scored."""
    box = first_outside(boxes, size)
    if box is not None:
        raise ValueError(f"boxes of photo {index}: the box {box} lies outside the {size[1]}x{size[0]} photo")


def _checked_scores(scores: object, count: int) -> Tensor:
    """A scorer's output as float32 (a bare S2CNet under autocast gives bfloat16, full of ties): one score
    per crop, and on the CPU (where reading it back costs no wait for a device) none NaN (ranked, a NaN came
    first); ``ValueError`` naming what the scorer gave otherwise (-inf stays: a blend without decoding gives
    it to crops off its shortlist)."""
    if not isinstance(scores, Tensor) or scores.shape != (count,):
        shown = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"the model must give one score per crop, a Tensor[{count}], got {shown}")
    scores = scores.float()
    if scores.device.type == "cpu" and bool(torch.isnan(scores).any()):
        raise ValueError(f"the model scored {int(torch.isnan(scores).sum())} of {count} crops NaN")
    return scores


class Cropper:
    """``Cropper(model=None, proposer=None, device=None).crop(photos, "16:9", top_k=1)``.

    ``model`` is a crop scorer (:class:`~s2c_ops.models.scorer.Scorer`): an :class:`~s2c_ops.S2CNet`, the
    geometry prior, or any callable with their call signature; ``None`` is the package's default model
    (``create_model("default")``). It needs ``num_boxes`` object boxes per image, ``model.bbox_num`` unless
    given (a scorer without ``bbox_num`` needs ``num_boxes``). A scorer with a ``fused()`` inference copy
    (S2CNet, the default model) is used through it, made here: later changes to the model (weights, device)
    do not reach the Cropper.

    ``device``: where the scoring runs; ``None`` is the model's own device (the CPU for a scorer without
    tensors). A module that must move there is copied first (a fused copy is the Cropper's own and is
    moved); the caller's model is never moved. ``proposer``: a proposer, a proposer name
    (:func:`~s2c_ops.cropping.proposals.create_proposer`) or ``None``, ``create_proposer("default")`` (faces,
    then salient regions). ``apply_exif_orientation`` turns PIL images upright before anything else,
    as ``s2c crop`` does: boxes are then in pixels of the upright photo. ``face_rule``: what a candidate loses
    for the faces the proposer found (:class:`~s2c_ops.cropping.face_rule.FaceRule`: cuts most, then main
    faces left out, then heads crowded), and the crops built from the faces added to each ratio's
    candidates; ``None``: neither. A scorer with the ``uses_faces`` ability (the default model) is told
    which images have faces.

    Scores come back as float32 on the CPU, one tensor per photo.
    """

    def __init__(
        self,
        model: Optional[Callable[..., Tensor]] = None,
        proposer: Optional[Union[str, Proposer]] = None,
        *,
        preprocess: Optional[OfficialPreprocess] = None,
        num_boxes: Optional[int] = None,
        batch_size: int = 16,
        device: Optional[DeviceLike] = None,
        apply_exif_orientation: bool = True,
        face_rule: Optional[FaceRule] = FaceRule(),
    ) -> None:
        batch_size = _whole("batch_size", batch_size)
        if isinstance(proposer, str):
            proposer = create_proposer(proposer)
        elif proposer is not None and (not callable(proposer) or isinstance(proposer, type)):
            shown = f"the class {proposer.__name__} (make one: {proposer.__name__}(...))" \
                if isinstance(proposer, type) else type(proposer).__name__
            raise TypeError(f"proposer must be None, a proposer name or a callable, got {shown}")
        if face_rule is not None and not isinstance(face_rule, FaceRule):
            raise TypeError(f"face_rule must be a FaceRule or None, got {type(face_rule).__name__}")
        if preprocess is not None and not isinstance(preprocess, OfficialPreprocess):
            raise TypeError(f"preprocess must be an OfficialPreprocess or None, got {type(preprocess).__name__}")
        if model is None:
            model = create_model("default")
        if not callable(model) or isinstance(model, type):
            raise TypeError(f"model must be a crop scorer (callable), got {type(model).__name__}"
                            + (f" {model.__name__} (make one: {model.__name__}(...))" if isinstance(model, type) else ""))
        if num_boxes is None:
            num_boxes = getattr(model, "bbox_num", None)
            if num_boxes is None:
                raise TypeError(f"{type(model).__name__} has no bbox_num: pass num_boxes= (object boxes per image)")
        scorer = inference_copy(model)
        own = scorer is not model
        current = module_device(scorer) if isinstance(scorer, nn.Module) else None
        if device is None:
            device = current or torch.device("cpu")
        device = torch.device(device)
        if current is not None and current != device:
            scorer = (scorer if own else copy.deepcopy(scorer)).to(device)
        self.model = scorer
        self.device = device
        self.proposer = proposer if proposer is not None else create_proposer("default")
        self.preprocess = preprocess or OfficialPreprocess.for_model(model)
        self.num_boxes = check_num_boxes(num_boxes)
        self.batch_size = batch_size
        self.apply_exif_orientation = apply_exif_orientation
        self.face_rule = face_rule

    def crop(self, photos: Photos, ratio: RatioLike, top_k: int = 1) -> List[CropResult]:
        """The ``top_k`` best crops of ``ratio`` (width / height, or ``"free"``: the best crop of any shape)
        for each photo, best first (fewer when fewer candidates exist)."""
        return [results[0] for results in self.crop_ratios(photos, [ratio], top_k)]

    @torch.no_grad()
    def crop_ratios(self, photos: Photos, ratios: Sequence[RatioLike], top_k: int = 1) -> List[List[CropResult]]:
        """For each photo, a :class:`CropResult` per ratio, in the order the ratios were given. All ratios of a
        photo are scored in one call, each ratio's candidates as a set of their own (a ratio's crops never
        depend on the others asked for). A ratio a photo cannot hold raises ``ValueError`` naming the photo."""
        top_k = _whole("top_k", top_k)
        if isinstance(ratios, (str, numbers.Real)):
            raise TypeError(f"ratios must be a list of ratios, got {ratios!r} (for one ratio, call crop)")
        values = [parse_ratio(r, free=True) for r in ratios]
        if not values:
            raise ValueError("give at least one ratio")
        photos = photo_list(photos)
        resized, geometries, details = self._prepare_all(photos)
        found = self._find_objects(resized, details)
        candidates = [self._candidates(g, values, index=i, faces=g.boxes_to_original(f[1]))
                      for i, (g, f) in enumerate(zip(geometries, found))]
        scores = self._score_images(resized, geometries, candidates, found=found)
        return [self._best_crops(c, s, values, top_k) for c, s in zip(candidates, scores)]

    @torch.no_grad()
    def score(self, photos: Photos, boxes: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
        """The scores the Cropper ranks crops by (the model's, less the face rule's charges) of any ``boxes``:
        per photo a ``Tensor[K, 4]`` of ``(x1, y1, x2, y2)`` in its pixels (one tensor for one photo). A photo's
        boxes are scored as one candidate set: with the default model, whose scores are each box's expected
        overlap with the best of the set, a box's score depends on the others given with it. A box's part
        outside its photo is cut off; a box wholly outside it is a ``ValueError``."""
        photos = photo_list(photos)
        box_sets = [boxes] if isinstance(boxes, Tensor) else list(boxes)
        if len(box_sets) != len(photos):
            raise ValueError(f"give one Tensor[K, 4] of boxes per photo: {len(photos)} photos, {len(box_sets)} box sets")
        box_sets = [_check_boxes(b, i) for i, b in enumerate(box_sets)]
        resized, geometries, details = self._prepare_all(photos)
        for i, (b, g) in enumerate(zip(box_sets, geometries)):
            _check_overlap(b, i, g.original)
        found = self._find_objects(resized, details)
        return self._score_images(resized, geometries, box_sets, found=found)

    # The steps of the calls above, shared with s2c crop, s2c eval, s2c export and AestheticCrop.

    def _prepare(self, image: ImageLike) -> Tuple[Tensor, Resize, Optional[Detail]]:
        """The model's pixels of one photo (the official resize, values in [0, 255]), its geometry and its
        :meth:`_detail`, from one conversion of the photo. A large JPEG opened from a file and not decoded yet
        (``Image.open(path)``) is decoded reduced, as ``s2c crop`` does, from a copy of its own (a
        :func:`~s2c_ops.cropping.images.draft`, keeping twice the pixels the model and the second look
        use); another large PIL image is reduced before its conversion (:func:`~s2c_ops.cropping.images.reduced`)."""
        if isinstance(image, Image.Image):
            pixels, original = self._photo_pixels(image)
        else:
            pixels, original = image_to_tensor(image), None
        resized, geometry = self.preprocess.resize(pixels, original=original)
        return resized, geometry, self._detail(pixels, geometry)

    def _photo_pixels(self, image: Image.Image) -> Tuple[Tensor, Tuple[int, int]]:
        """A PIL photo's pixels for :meth:`_prepare` (reduced when it is large) and its upright (height, width)."""
        w, h = image.size
        swapped = self.apply_exif_orientation and turns_sideways(image)
        original = (w, h) if swapped else (h, w)
        size, factor = self.preprocess.output_size(*original), self._detail_factor
        own = reopened(image) if drafts_to(image, size, factor, swapped=swapped) else None
        with own if own is not None else contextlib.nullcontext():
            source = own if own is not None and draft(own, size, factor, swapped=swapped) else image
            pixels = image_to_tensor(reduced(source, size, factor, swapped=swapped),
                                     apply_exif_orientation=self.apply_exif_orientation)
        return pixels, original

    def _prepare_all(self, photos: Sequence[ImageLike]) -> Tuple[List[Tensor], List[Resize], List[Optional[Detail]]]:
        prepared = [self._prepare(photo) for photo in photos]
        return [r for r, _, _ in prepared], [g for _, g, _ in prepared], [d for _, _, d in prepared]

    def _detail(self, pixels: Tensor, geometry: Resize) -> Optional[Detail]:
        """The :data:`~s2c_ops.cropping.proposals.Detail` of a photo (``pixels`` ``[3, H, W]`` of ``geometry``,
        uint8, at any resolution) for the proposer's second look, made now at the resolution the proposer
        asks for (its ``detail_factor``): held while the photos wait for their objects, it is small whatever
        the photo's size. ``None`` for a proposer that takes no second look."""
        factor = self._detail_factor
        if factor is None:
            return None
        return _Detail(finer(pixels[None], geometry, factor), geometry, self.device)

    @property
    def _detail_factor(self) -> Optional[float]:
        """The proposer's :attr:`~s2c_ops.cropping.proposals.Proposer.detail_factor` (``None``: no second look)."""
        return getattr(self.proposer, "detail_factor", None)

    def _candidates(self, geometry: Resize, ratios: Sequence[Ratio], index: Optional[int] = None,
                    faces: Optional[Tensor] = None) -> List[Tensor]:
        """The candidate crops of each ratio (original pixels) of an image: :func:`candidate_crops`, then, for
        ``faces`` (the image's face boxes, original pixels) and a ratio other than free, the face rule's crops
        around them where no anchor keeps every main face and cuts none. A ratio the image cannot hold raises
        ``ValueError`` naming the image (``index``) and its size."""
        h, w = geometry.original
        out = []
        for ratio in ratios:
            try:
                boxes = candidate_crops(h, w, ratio)
            except ValueError as e:
                where = f"photo {index} ({w}x{h})" if index is not None else f"a {w}x{h} photo"
                raise ValueError(f"{where}: {e}") from None
            if self.face_rule is not None and faces is not None and len(faces) and ratio != FREE:
                boxes = torch.cat([boxes, self.face_rule.candidates(faces, h, w, ratio, others=boxes)])
            out.append(boxes)
        return out

    def _size_batches(self, resized: Sequence[Tensor]) -> List[List[int]]:
        """Indices of ``resized`` in batches of one size, at most ``batch_size`` each."""
        sizes: Dict[tuple, List[int]] = defaultdict(list)
        for i, image in enumerate(resized):
            sizes[tuple(image.shape[-2:])].append(i)
        return [members[start : start + self.batch_size] for members in sizes.values()
                for start in range(0, len(members), self.batch_size)]

    @torch.no_grad()
    def _find_objects(self, resized: Sequence[Tensor], details: Optional[Sequence[Optional[Detail]]] = None
                      ) -> List[Tuple[Tensor, Tensor]]:
        """Per image (as :meth:`_prepare` gives them): the proposer's ``num_boxes`` object boxes and the faces
        it found (F, 4), in model pixels, from the batches :meth:`_score_images` makes. ``details`` (one per
        image, :meth:`_detail`): the photos at a finer resolution, for the proposer's second look."""
        out: List[Optional[Tuple[Tensor, Tensor]]] = [None] * len(resized)
        for batch in self._size_batches(resized):
            pixels = self.preprocess.unnormalised(torch.stack([resized[i] for i in batch]).float().to(self.device))
            found = self._propose(pixels, None if details is None else [details[i] for i in batch])
            for k, i in enumerate(batch):
                out[i] = (found.boxes[k], found.faces[k] if found.faces else pixels.new_zeros((0, 4)))
        return out

    def _propose(self, pixels: Tensor, details: Optional[Sequence[Optional[Detail]]] = None) -> ProposedObjects:
        # The pixels come from the package's own resize: already checked, no host read for a second check.
        if isinstance(self.proposer, Proposer):
            return self.proposer.propose_objects(pixels, self.num_boxes, validate=False, details=details)
        return ProposedObjects(self.proposer(pixels, self.num_boxes), [])  # any callable of the proposer's form

    @torch.no_grad()
    def _score_images(self, resized: Sequence[Tensor], geometries: Sequence[Resize],
                      boxes: Sequence[Union[Tensor, Sequence[Tensor]]],
                      objects: Optional[Sequence[Tensor]] = None,
                      found: Optional[Sequence[Tuple[Tensor, Tensor]]] = None) -> List[Tensor]:
        """Scores (float32, on the device of ``resized``) of each image's ``boxes`` (original pixels):
        ``resized`` are the images as :meth:`_prepare` gives them (any sizes; uint8 or float in [0, 255]),
        ``geometries`` their :class:`Resize`. An image's boxes are one tensor, or a list of candidate sets
        (one per ratio) whose scores never depend on each other; the scores come concatenated in that order.
        Images of one size are scored together, ``batch_size`` per call. ``objects`` (each image's object
        boxes in original pixels) replace the proposer's boxes (no faces then); ``found`` (what
        :meth:`_find_objects` gave for these images) spares the proposer a second run."""
        if not (len(resized) == len(geometries) == len(boxes)) or any(
                extra is not None and len(extra) != len(boxes) for extra in (objects, found)):
            raise ValueError("_score_images needs one geometry, one box tensor (and one object-box tensor) per image")
        for i, (image, geometry) in enumerate(zip(resized, geometries)):
            if tuple(image.shape[-2:]) != tuple(geometry.resized):
                raise ValueError(f"image {i}: the model's input is {tuple(image.shape[-2:])} pixels, its geometry "
                                 f"says {tuple(geometry.resized)} (boxes would land in the wrong place)")
        groups = [[b] if isinstance(b, Tensor) else list(b) for b in boxes]
        results: List[Optional[Tensor]] = [None] * len(resized)
        for batch in self._size_batches(resized):
            pixels = torch.stack([resized[i] for i in batch]).float()
            given = None if objects is None else [geometries[i].boxes_to_model(objects[i]) for i in batch]
            known = None if found is None else ProposedObjects([found[i][0] for i in batch],
                                                               [found[i][1] for i in batch])
            scores = self._score_resized(pixels, [geometries[i] for i in batch],
                                         [torch.cat(groups[i]) for i in batch], given,
                                         groups=[[len(g) for g in groups[i]] for i in batch], found=known)
            for i, s in zip(batch, scores):
                results[i] = s.float()
        return results

    @torch.no_grad()
    def _score_candidates(self, images: Tensor, ratio: RatioLike, *, validate: Optional[bool] = None
                          ) -> Tuple[Tensor, Tensor]:
        """For a (B, 3, H, W) batch of RGB values in [0, 1] (one size, any device): the candidate crops
        of ``ratio`` in its pixels, (N, 4), and their scores, (B, N), both on the images' device.
        Everything stays on the device (the batched path of the Kornia augmentation). ``validate``: the
        check of the values (:func:`~s2c_ops.cropping.pixels.check_unit_range`; ``None``: on the CPU only,
        where it costs no wait for a device)."""
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images must be a float (B, 3, H, W) batch in [0, 1], got {tuple(images.shape)} {images.dtype}")
        check_unit_range(images, validate)
        h, w = images.shape[-2:]
        boxes = _anchors(h, w, parse_ratio(ratio), images.device)
        resized, geometry = self.preprocess.resize_batch(images.float() * 255)
        details = [_Detail(images[i : i + 1], geometry, self.device) for i in range(len(images))]
        scores = self._score_resized(resized, geometry, [boxes] * len(images), details=details)
        # A copy: the cached anchors must not change when a caller edits what it gets.
        return boxes.clone(), torch.stack(scores).to(images.device)

    def _score_resized(
        self, resized: Tensor, geometry, boxes: List[Tensor], objects: Optional[List[Tensor]] = None, *,
        groups: Optional[List[List[int]]] = None, found: Optional[ProposedObjects] = None,
        details: Optional[Sequence[Optional[Detail]]] = None,
    ) -> List[Tensor]:
        """Scores of ``boxes`` (original pixels, one tensor per image) on ``resized`` images (one size,
        values in [0, 255] as :meth:`_prepare` gives them), on the device of ``resized``; ``geometry`` is
        their Resize, or one per image. ``objects`` (model pixels, one tensor per image) replace the
        proposer's boxes when given. ``groups``: per image, the sizes of consecutive candidate sets scored as
        if alone (default: all of an image's boxes are one set). ``found``: the proposer's boxes and faces for
        these images (model pixels), when already found; else ``details`` go to the proposer (its second look)."""
        device, given = self.device, resized.device
        resized = resized.to(device)
        geometries = geometry if isinstance(geometry, list) else [geometry] * len(boxes)
        height, width = resized.shape[-2:]
        crop_boxes = [clamp_to_image(g.boxes_to_model(b.to(device)), (height, width)) for g, b in zip(geometries, boxes)]
        pixels = self.preprocess.unnormalised(resized)
        if objects is not None:
            found = GivenBoxes([o.to(device) for o in objects]).propose_objects(pixels, self.num_boxes)
        elif found is None:
            found = self._propose(pixels, details)
        # A scorer that reads only the size (the geometry prior) is spared the normalisation.
        images = self.preprocess.normalise(resized) if ability(self.model, "reads_pixels") else resized
        options = {}
        if ability(self.model, "decodes_candidates") and groups is not None:
            options["groups"] = groups
        rule = self.face_rule
        if ability(self.model, "uses_faces") and rule is not None and found.faces:
            options["faces"] = [len(f) > 0 for f in found.faces]
        scores = _checked_scores(self.model(images, crop_boxes, found.boxes, **options), sum(map(len, crop_boxes)))
        per_image = list(scores.split([len(b) for b in crop_boxes]))
        if rule is not None and found.faces:
            per_image = [s - rule.penalty(b, f.to(device), height, width).to(s.dtype) if len(f) else s
                         for s, b, f in zip(per_image, crop_boxes, found.faces)]
        return [s.to(given) for s in per_image]

    @staticmethod
    def _best_crops(candidates: List[Tensor], scores: Tensor, ratios: Sequence[Ratio], top_k: int) -> List[CropResult]:
        """The ``top_k`` best of each ratio's candidates, in the order of ``ratios``, given the scores of all of
        them in order."""
        out = []
        for ratio, boxes, s in zip(ratios, candidates, scores.split([len(b) for b in candidates])):
            order = torch.argsort(s, descending=True, stable=True)[:top_k]
            out.append(CropResult(ratio, boxes[order], s[order]))
        return out
