"""The scorer contract: what the Cropper, ``s2c crop``, ``s2c eval`` and ``AestheticCrop`` call, and the
input checks every scorer of the package runs.

A scorer is called as ``scorer(images, crop_boxes, object_boxes) -> Tensor[K]``: ``images`` a float
(B, 3, H, W) batch (normalised as :mod:`s2c_ops.cropping.transforms` does; scorers that need only the size may
ignore the pixels), ``crop_boxes`` ``Tensor[K, 5]`` rois or a list of B ``Tensor[Ki, 4]``, ``object_boxes``
exactly ``bbox_num`` boxes per image in the same formats, all ``(x1, y1, x2, y2)`` in pixels of ``images``.
It returns one score per crop (higher is better), in the order of ``crop_boxes``.

Optional abilities (:data:`ABILITIES`; read them with :func:`ability` and :func:`inference_copy`, never by
the scorer's class): ``reads_pixels`` (False: only the images' size is read, the Cropper skips normalising
them, and the scorer scores one image's unit-square geometry with ``score_image(crops, objects)``, which
``s2c eval`` uses on every rated GAICD image, pixels or not), ``decodes_candidates`` (the scores depend on the
set of candidates scored together; the scorer takes ``groups=``), ``uses_faces`` (it takes ``faces=``: per
image, whether the proposer found faces in it), ``antialias`` (its input is resized with
antialiasing) and ``fused()`` (an inference copy, used by the Cropper and ``s2c eval``).

The package's scorers (:class:`ScorerModule`) save and load alike: ``save(path, *, dtype=None)`` and
``cls.load(path, map_location="cpu")``; an inference copy refuses to save or train.
"""
from typing import Any, Optional, Protocol, Tuple, TypeVar, runtime_checkable

import torch
from torch import Tensor, nn

from ..ops._checks import host_may_read
from ..ops.boxes import BoxesLike, boxes_to_rois, clamp_to_image
from .weights import PathLike, load_model, save_weights

S = TypeVar("S", bound="ScorerModule")
#: The optional abilities of a scorer, and what a scorer that does not declare one is taken to have.
ABILITIES = {"reads_pixels": True, "decodes_candidates": False, "uses_faces": False, "antialias": False}


@runtime_checkable
class Scorer(Protocol):
    """A crop scorer (S2CNet, the geometry prior, ...): see the module docstring."""

    @property
    def bbox_num(self) -> int:
        """Object boxes it needs per image."""

    @property
    def device(self) -> torch.device:
        """Where it computes (its parameters' device)."""

    def __call__(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike) -> Tensor:
        ...


class ScorerModule(nn.Module):
    """Base of the package's scorers (S2CNet, the geometry prior, the default model): the :class:`Scorer`
    properties from ``config`` and the parameters, the abilities' defaults, saving and loading."""

    #: False for a scorer that reads only the images' size (see the module docstring).
    reads_pixels: bool = True
    #: True for a scorer whose scores depend on the set of candidates scored together (the default model's
    #: expected-IoU decoding): it takes ``groups=`` (per image, the sizes of consecutive candidate groups,
    #: each scored on its own), and the Cropper gives each ratio's candidates as one group.
    decodes_candidates: bool = False
    #: True for a scorer that takes ``faces=`` (per image, whether the Cropper's proposer found faces in it).
    uses_faces: bool = False
    #: Set on the copies :meth:`fused` makes: they cannot train or be saved.
    inference_only: bool = False

    @property
    def bbox_num(self) -> int:
        """Object boxes per image."""
        return self.config.bbox_num

    @property
    def antialias(self) -> bool:
        """Whether its input is resized with antialiasing (``config.antialias``)."""
        return bool(getattr(self.config, "antialias", False))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def train(self: S, mode: bool = True) -> S:
        if mode and self.inference_only:
            raise RuntimeError(f"this {type(self).__name__} is an inference copy (from .fused()); train the original")
        return super().train(mode)

    def save(self, path: PathLike, *, dtype: Optional[torch.dtype] = None) -> None:
        """Saves weights and config (:mod:`s2c_ops.models.weights`: safetensors, the config in its metadata);
        ``dtype`` (a floating-point type, e.g. ``torch.float16``) stores the floating-point tensors in it.
        An inference copy (from :meth:`fused`) is refused: its layers do not load into the model."""
        if self.inference_only:
            raise RuntimeError(f"this {type(self).__name__} is an inference copy (from .fused()); save the original")
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point type, got {dtype}")
        save_weights(self, path, dtype=dtype)

    @classmethod
    def load(cls: "type[S]", path: PathLike, map_location: Optional[str] = "cpu") -> S:
        """Loads a model written by :meth:`save` (a file, or a run folder holding one)."""
        return load_model(cls, path, map_location)


def ability(scorer: Any, name: str) -> bool:
    """One of :data:`ABILITIES` of any scorer (its default where the scorer does not declare it)."""
    return bool(getattr(scorer, name, ABILITIES[name]))


def inference_copy(scorer: Any) -> Any:
    """The scorer's ``fused()`` inference copy where it has one, else the scorer itself."""
    fused = getattr(scorer, "fused", None)
    return fused() if callable(fused) else scorer


def module_device(module: nn.Module) -> Optional[torch.device]:
    """The device of a module's first parameter or buffer; ``None`` for a module without tensors."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def check_scorer_inputs(images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike, bbox_num: int, *,
                        min_side: int = 1) -> Tuple[Tensor, Tensor]:
    """Validated rois ``(crops (K, 5), objects (B * bbox_num, 5))`` in ``images``' dtype: crops inside
    their image; objects sorted by image (stable) and clamped into it. Raises ``ValueError`` /
    ``TypeError`` naming the problem: images not a float (B, 3, H, W) batch with sides of at least
    ``min_side``, no crop, a count of object boxes other than ``bbox_num`` per image, NaN or infinite
    values, batch indices that are not whole numbers in range, empty or inverted boxes. The checks of
    values are skipped where :func:`~s2c_ops.ops._checks.host_may_read` says no (a CUDA graph being
    captured, sync debug mode "error")."""
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 3, H, W) tensor, got {shape}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point (normalised), got {images.dtype}")
    b, _, h, w = images.shape
    if h < min_side or w < min_side:
        raise ValueError(f"images must be at least {min_side}x{min_side} pixels, got {h}x{w}")
    read = host_may_read(images)
    crops = _as_rois(crop_boxes, b, "crop_boxes", read).to(images.dtype)
    objects = _as_rois(object_boxes, b, "object_boxes", read).to(images.dtype)
    if len(crops) == 0:
        raise ValueError("crop_boxes is empty: give at least one candidate crop")
    if read:
        counts = torch.bincount(objects[:, 0].long(), minlength=b)
        if len(objects) != b * bbox_num or bool((counts != bbox_num).any()):
            raise ValueError(f"object_boxes must hold exactly bbox_num={bbox_num} boxes per image; got "
                             f"{counts.tolist()} for {b} images")
    elif len(objects) != b * bbox_num:
        raise ValueError(f"object_boxes must hold exactly bbox_num={bbox_num} boxes per image; got {len(objects)} "
                         f"for {b} images")
    objects = objects[torch.argsort(objects[:, 0], stable=True)]
    if read:
        _check_boxes(crops, h, w, "crop_boxes", inside=True)
        _check_boxes(objects, h, w, "object_boxes", inside=False)
    objects = torch.cat([objects[:, :1], clamp_to_image(objects[:, 1:], (h, w))], dim=1)
    return crops, objects


def _as_rois(boxes: BoxesLike, num_images: int, name: str, read: bool) -> Tensor:
    if isinstance(boxes, (list, tuple)) and len(boxes) != num_images:
        raise ValueError(f"{name} is a list of {len(boxes)} box tensors for {num_images} images")
    try:
        rois = boxes_to_rois(boxes)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None
    if not read:
        return rois
    if not torch.isfinite(rois).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    index = rois[:, 0]
    if len(rois) and bool(((index != index.round()) | (index < 0) | (index >= num_images)).any()):
        raise ValueError(f"{name}: batch indices must be whole numbers in [0, {num_images})")
    return rois


def _check_boxes(rois: Tensor, height: int, width: int, name: str, inside: bool) -> None:
    x1, y1, x2, y2 = rois[:, 1:].unbind(1)
    inverted = (x2 <= x1) | (y2 <= y1)
    if bool(inverted.any()):
        row = int(inverted.nonzero()[0])
        raise ValueError(f"{name}: box {row} {rois[row, 1:].tolist()} is empty or inverted (need x2 > x1, y2 > y1)")
    if inside:
        outside = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)
        if bool(outside.any()):
            row = int(outside.nonzero()[0])
            raise ValueError(
                f"{name}: box {row} {rois[row, 1:].tolist()} lies outside the {width}x{height} image"
            )
