"""GAICD (the Grid Anchor based Image Cropping Dataset) in the official S2CNet layout, as a ``Dataset``
(the files themselves: :mod:`.gaicd_files`).

Every item keeps the file line of each crop it returns (``crop_lines``).

Quick use::

    from torch.utils.data import DataLoader
    from s2c_ops.data import GAICD, collate, normalise_mos

    train = GAICD.with_images("data/GAIC", "train", augment=True,
                              generator=torch.Generator().manual_seed(0))
    loader = DataLoader(train, batch_size=1, shuffle=True, collate_fn=collate)
    for batch in loader:
        scores = model(batch["image"], batch["crop_boxes"], batch["object_boxes"])
        loss = F.smooth_l1_loss(scores, normalise_mos(torch.cat(batch["mos"])))

    geometry = GAICD("data/GAIC", "train", pixels=False)   # all 1,036 train images, no pixels
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cropping.transforms import OfficialPreprocess
from ..ops.boxes import flip_boxes
from . import gaicd_files
from .gaicd_files import *  # noqa: F401,F403  (the file-level API re-exported, gaicd_files.__all__)
from .gaicd_files import (
    Annotations,
    GAICDError,
    PathLike,
    Size,
    check_inside,
    find_image,
    load_photo,
    parse_object_boxes,
    read_annotations,
    read_image_sizes,
    read_split,
)

__all__ = ["GAICD", "collate", "flip_boxes", *gaicd_files.__all__]


# ---------------------------------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------------------------------
def _clamp(boxes: Tensor, height: int, width: int) -> Tensor:
    bounds = boxes.new_tensor([width, height, width, height])
    return torch.minimum(boxes.clamp(min=0), bounds)


def _at_least_one_pixel(boxes: Tensor, height: int, width: int) -> Tensor:
    """Widens zero-size (snapped, clamped) boxes to one pixel, staying in the image: the model rejects
    empty boxes, and the official files hold a few zero-size object boxes."""
    out = boxes.clone()
    for lo, hi, limit in ((0, 2, width), (1, 3, height)):
        out[:, hi] = torch.maximum(out[:, hi], out[:, lo] + 1).clamp(max=limit)
        out[:, lo] = torch.minimum(out[:, lo], out[:, hi] - 1).clamp(min=0)
    return out


# ---------------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------------
class GAICD(Dataset):
    """GAICD in the official layout as a ``torch.utils.data.Dataset``.

    Args:
        root: the folder holding ``annotations/``, ``bbox/``, ``split.json``, ``images/`` (and
            ``image_sizes.json`` for ``pixels=False``).
        split: a key of split.json (``"train"`` or ``"test"``).
        pixels: ``True``: items carry the pre-processed image and boxes in the model's pixels.
            ``False``: geometry only (no image is opened; sizes from image_sizes.json; boxes in
            original pixels), for geometry-only learning and pixel-free evaluation.
        augment: training augmentation: left-right flip with probability ``flip_prob`` (moves every
            box) and, with pixels, photometric jitter (brightness, contrast, saturation factors drawn
            uniformly from ``[1 - jitter, 1 + jitter]``, applied to the resized RGB before
            normalisation).
        ids: the image ids to use (each must be in the split and have an annotation file); default:
            every id of the split with a file in ``annotations/``, in split.json's order. With
            ``pixels=True`` every one of them must have an image; only 5 of GAICD's images may be at
            hand, so select those with ``GAICD.with_images(root, split, ...)`` or
            ``ids=GAICD.ids_with_images(root, split)``.
        num_object_boxes: keep the first ``D`` object boxes of each file (the model needs exactly its
            ``bbox_num``: 10 for GAICv1, 5 for GAICv2); a file with fewer is an error. ``None``: all.
        preprocess: the pre-processing (default :class:`~s2c_ops.cropping.transforms.OfficialPreprocess`).
        generator: the ``torch.Generator`` augmentation draws from (``None``: torch's global RNG).
            Draws happen in ``__getitem__`` order; with DataLoader workers each worker holds a copy of
            the generator, so pass ``None`` there (the DataLoader seeds each worker's global RNG).

    Items (``dict``), with ``pixels=True``:
        ``id`` (str); ``image`` float32 (3, h, w), the official pre-processing; ``crop_boxes``
        float32 (N, 4) ``(x1, y1, x2, y2)`` in model pixels, snapped as the official code does (x1,
        y1 floored, x2, y2 ceiled; whole numbers) and clamped to the image; ``mos`` float32 (N,) on the
        1..5 scale (train against :func:`normalise_mos`); ``object_boxes`` float32 (D, 4) in model
        pixels, snapped the same way (as the official code does), clamped, at least one pixel wide and
        high; ``original_size`` (H, W); ``crop_boxes_original`` / ``object_boxes_original`` in original
        pixels; ``crop_lines`` int64 (N,), the annotation-file line of each crop; ``flipped`` (bool).
    With ``pixels=False``: ``id``, ``size`` = ``original_size`` = (H, W) from image_sizes.json,
    ``crop_boxes``, ``object_boxes`` (original pixels, as written: zero-size object boxes kept),
    ``mos``, ``crop_lines``, ``flipped``.
    When flipped, every box (model and original pixels) describes the mirrored image.

    Parsed files are cached per dataset (bounds are checked on every access, against the size of that
    access), so repeated epochs do not re-read the text files.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        pixels: bool = True,
        augment: bool = False,
        ids: Optional[Iterable[Union[str, int]]] = None,
        num_object_boxes: Optional[int] = None,
        preprocess: Optional[OfficialPreprocess] = None,
        generator: Optional[torch.Generator] = None,
        flip_prob: float = 0.5,
        jitter: float = 0.2,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.pixels = bool(pixels)
        self.augment = bool(augment)
        self.preprocess = preprocess if preprocess is not None else OfficialPreprocess()
        self.generator = generator
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.flip_prob = float(flip_prob)
        self.jitter = float(jitter)
        if num_object_boxes is not None and (isinstance(num_object_boxes, bool) or int(num_object_boxes) != num_object_boxes or num_object_boxes < 1):
            raise ValueError(f"num_object_boxes must be a positive integer or None, got {num_object_boxes!r}")
        self.num_object_boxes = None if num_object_boxes is None else int(num_object_boxes)

        split_ids = self._split_ids(self.root, split)
        annotated = self._annotated(self.root)
        if ids is None:
            chosen = [i for i in split_ids if i in annotated]
            if not chosen:
                raise GAICDError(self.root / "annotations", f"no annotation file for any of the {len(split_ids)} ids of split {split!r}")
        else:
            chosen = [str(i) for i in ids]
            in_split = set(split_ids)
            for i in chosen:
                if i not in in_split:
                    raise ValueError(f"id {i!r} is not in split {split!r} of {self.root / 'split.json'}")
                if i not in annotated:
                    raise GAICDError(self.annotation_path(i), f"annotation file is missing (id {i!r} was asked for)")
        self.ids: List[str] = chosen

        for i in chosen:
            if not self.bbox_path(i).is_file():
                raise GAICDError(self.bbox_path(i), f"object-box file is missing (image {i} has annotations)")

        self._image_paths: Dict[str, Path] = {}
        self._sizes: Dict[str, Size] = {}
        if self.pixels:
            missing = []
            for i in chosen:
                p = find_image(self.root, split, i)
                if p is None:
                    missing.append(i)
                else:
                    self._image_paths[i] = p
            if missing:
                raise GAICDError(
                    self.root / "images" / split / f"{missing[0]}.jpg",
                    f"image missing for annotated id {missing[0]} ({len(missing)} of {len(chosen)} ids of split "
                    f"{split!r} have no image). Use GAICD.with_images(root, {split!r}) or "
                    f"ids=GAICD.ids_with_images(root, {split!r}) for the ids with images, or pixels=False",
                )
        else:
            sizes_path = self.root / "image_sizes.json"
            sizes = read_image_sizes(sizes_path)
            for i in chosen:
                if i not in sizes:
                    raise GAICDError(sizes_path, f"no [width, height] entry for image {i!r}")
                self._sizes[i] = sizes[i]
        self._annotation_cache: Dict[str, Annotations] = {}
        self._object_cache: Dict[str, Tuple[Tensor, Tensor]] = {}

    # -- ids and paths -------------------------------------------------------------------------
    @staticmethod
    def _split_ids(root: Path, split: str) -> List[str]:
        splits = read_split(root / "split.json")
        if split not in splits:
            raise ValueError(f"split {split!r} is not in {root / 'split.json'} (it has {sorted(splits)})")
        return splits[split]

    @staticmethod
    def _annotated(root: Path) -> set:
        folder = root / "annotations"
        if not folder.is_dir():
            raise GAICDError(folder, "annotations folder is missing")
        return {name[:-4] for name in os.listdir(folder) if name.endswith(".txt")}

    @classmethod
    def ids_with_images(cls, root: PathLike, split: str = "train") -> List[str]:
        """The annotated ids of ``split`` (split.json order) whose image is in ``images/<split>/``."""
        root = Path(root)
        annotated = cls._annotated(root)
        return [i for i in cls._split_ids(root, split) if i in annotated and find_image(root, split, i) is not None]

    @classmethod
    def with_images(cls, root: PathLike, split: str = "train", **kwargs: Any) -> "GAICD":
        """The dataset with pixels over the annotated ids of ``split`` that have an image."""
        ids = cls.ids_with_images(root, split)
        if not ids:
            raise GAICDError(Path(root) / "images" / split, f"no annotated image of split {split!r} is here")
        return cls(root, split, pixels=True, ids=ids, **kwargs)

    def annotation_path(self, image_id: str) -> Path:
        return self.root / "annotations" / f"{image_id}.txt"

    def bbox_path(self, image_id: str) -> Path:
        return self.root / "bbox" / f"{image_id}.txt"

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, "
            f"pixels={self.pixels}, augment={self.augment}, num_object_boxes={self.num_object_boxes})"
        )

    # -- parsing (cached) ----------------------------------------------------------------------
    def _annotations(self, image_id: str, size: Size, size_source: str) -> Annotations:
        ann = self._annotation_cache.get(image_id)
        if ann is None:
            ann = read_annotations(self.annotation_path(image_id))
            self._annotation_cache[image_id] = ann
        check_inside(ann.path, ann.boxes, ann.lines, size, size_source)
        return ann

    def _objects(self, image_id: str, size: Size, size_source: str) -> Tensor:
        path = self.bbox_path(image_id)
        cached = self._object_cache.get(image_id)
        if cached is None:
            cached = parse_object_boxes(path)
            self._object_cache[image_id] = cached
        boxes, lines = cached
        check_inside(path, boxes, lines, size, size_source)
        k = self.num_object_boxes
        if k is not None:
            if len(boxes) < k:
                raise GAICDError(path, f"holds {len(boxes)} object boxes, num_object_boxes={k} needed")
            boxes = boxes[:k]
        return boxes

    # -- augmentation --------------------------------------------------------------------------
    def _draw(self) -> Tuple[bool, Tuple[float, float, float]]:
        u = torch.rand(4, generator=self.generator, dtype=torch.float64).tolist()
        j = self.jitter
        factors = tuple(1.0 - j + 2.0 * j * v for v in u[1:])
        return u[0] < self.flip_prob, factors  # type: ignore[return-value]

    @staticmethod
    def _photometric(resized: Tensor, factors: Tuple[float, float, float]) -> Tensor:
        """Brightness, contrast, saturation (torchvision's definitions) on RGB in [0, 255]."""
        from torchvision.transforms import functional as TF  # here: torchvision costs a second at import

        x = resized / 255.0
        x = TF.adjust_brightness(x, factors[0])
        x = TF.adjust_contrast(x, factors[1])
        x = TF.adjust_saturation(x, factors[2])
        return x * 255.0

    # -- items ---------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Dict[str, Any]:
        image_id = self.ids[index]
        if self.pixels:
            path = self._image_paths[image_id]
            picture = load_photo(path)
            size = (picture.height, picture.width)
            source = f"the image {path}"
        else:
            size = self._sizes[image_id]
            source = f"{self.root / 'image_sizes.json'}"
        ann = self._annotations(image_id, size, source)
        objects = self._objects(image_id, size, source)
        flip, factors = self._draw() if self.augment else (False, (1.0, 1.0, 1.0))
        height, width = size
        crops_orig = flip_boxes(ann.boxes, width) if flip else ann.boxes
        objects_orig = flip_boxes(objects, width) if flip else objects

        item: Dict[str, Any] = {"id": image_id}
        if self.pixels:
            resized, geometry = self.preprocess.resize(picture)
            h, w = geometry.resized
            # float64 as the official Python arithmetic, so floor/ceil round exactly as it does
            crops = _clamp(geometry.boxes_to_model(crops_orig, snap=True), h, w)
            objs = _at_least_one_pixel(_clamp(geometry.boxes_to_model(objects_orig, snap=True), h, w), h, w)
            if flip:
                resized = resized.flip(-1)
            if self.augment and self.jitter > 0:
                resized = self._photometric(resized, factors)
            item["image"] = self.preprocess.normalise(resized).float().contiguous()
            item["crop_boxes"] = crops.float()
            item["mos"] = ann.mos.float()
            item["object_boxes"] = objs.float()
            item["original_size"] = size
            item["crop_boxes_original"] = crops_orig.float()
            item["object_boxes_original"] = objects_orig.float()
        else:
            item["size"] = size
            item["original_size"] = size
            item["crop_boxes"] = crops_orig.float()
            item["mos"] = ann.mos.float()
            item["object_boxes"] = objects_orig.float()
        item["crop_lines"] = ann.lines.clone()
        item["flipped"] = bool(flip)
        return item


# ---------------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------------
def collate(batch: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """``collate_fn`` for a DataLoader over :class:`GAICD`: the items' keys, each a list over the batch
    (``id``, ``crop_boxes``, ``object_boxes``, ``mos``, ... as the model takes ``list[Tensor[Ki, 4]]``
    boxes), except ``image``, stacked to ``(B, 3, h, w)``. Images of different sizes cannot be stacked
    (S2CNet's RoDAlign samples the whole feature map, so padding would change scores): use
    ``batch_size=1``, GAIC's practice of one image with all its crops per step."""
    if len(batch) == 0:
        raise ValueError("collate got an empty batch")
    keys = list(batch[0].keys())
    for item in batch[1:]:
        if list(item.keys()) != keys:
            raise ValueError(f"items of one batch have different keys: {keys} and {list(item.keys())}")
    out = {key: [item[key] for item in batch] for key in keys}
    if "image" in out:
        shapes = [tuple(im.shape) for im in out["image"]]
        if len(set(shapes)) > 1:
            listed = ", ".join(f"{i}: {s[1]}x{s[2]}" for i, s in zip(out.get("id", range(len(shapes))), shapes))
            raise ValueError(
                f"cannot stack images of different sizes ({listed}); GAIC trains one image per step: use "
                "DataLoader(dataset, batch_size=1, collate_fn=collate)"
            )
        out["image"] = torch.stack(out["image"])
    return out
