"""GAICD (the Grid Anchor based Image Cropping Dataset) in the official S2CNet layout.

Layout under ``root`` (what the official code reads as ``dataset/GAIC/``)::

    annotations/<id>.txt   one rated crop a line: ``y1 x1 y2 x2 MOS`` in original-image pixels;
                           MOS -2 marks an invalid crop (skipped, as the official code does)
    bbox/<id>.txt          the object boxes ("visual genes"), one a line: ``y1 x1 y2 x2``
    split.json             ``{"train": ["211085", ...], "test": [...]}`` (ids are strings)
    image_sizes.json       ``{"<id>": [width, height], ...}`` (needed only without pixels)
    images/<split>/<id>.jpg

Everything here speaks ``(x1, y1, x2, y2)`` boxes and ``(height, width)`` sizes; the files' ``y1 x1
y2 x2`` order and image_sizes.json's ``[width, height]`` are converted on reading.

Malformed data raises :class:`GAICDError` (a ``ValueError``) naming the file and, for a line-level
problem, the line: ``annotations/211958.txt:12: ...``. Nothing is dropped silently; the only rows left
out are MOS -2 crops (the official rule), and every item keeps the file line of each crop it returns
(``crop_lines``). Lines holding only white space carry no data and are passed over.

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

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from ..cropping.images import load_image, to_rgb
from ..cropping.transforms import OfficialPreprocess

__all__ = [
    "GAICD",
    "GAICDError",
    "Annotations",
    "IMAGE_EXTENSIONS",
    "INVALID_MOS",
    "MOS_MEAN",
    "MOS_STD",
    "collate",
    "denormalise_mos",
    "find_image",
    "flip_boxes",
    "normalise_mos",
    "read_annotations",
    "read_image_sizes",
    "read_object_boxes",
    "read_split",
]

#: GAIC's training target is ``(MOS - MOS_MEAN) / MOS_STD`` (official ``croppingdataset.py``).
MOS_MEAN = 2.95
MOS_STD = 0.8
#: MOS value the official annotation files use for an invalid crop.
INVALID_MOS = -2.0
#: MOS range of valid crops (GAIC's 1..5 rating scale).
MOS_RANGE = (1.0, 5.0)
#: Image file extensions looked for, in this order (the official data has ``.jpg``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")

PathLike = Union[str, "os.PathLike[str]"]
Size = Tuple[int, int]  # (height, width)


class GAICDError(ValueError):
    """Malformed or missing GAICD data. ``path`` is the file, ``line`` its 1-based line (or ``None``
    for a file-level problem); the message starts ``path:line:`` like a compiler's."""

    def __init__(self, path: PathLike, problem: str, line: Optional[int] = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # picklable (DataLoader workers send exceptions across processes)
        return type(self), (self.path, self.problem, self.line)


# ---------------------------------------------------------------------------------------------------
# MOS
# ---------------------------------------------------------------------------------------------------
def normalise_mos(mos: Union[Tensor, float, Sequence[float]]) -> Union[Tensor, float]:
    """GAIC's training target ``(MOS - 2.95) / 0.8`` (mean and spread of GAICD's ratings); the model
    is trained with SmoothL1 against it, so its scores are on this scale. A tensor or float in, the
    same out (a sequence gives a float32 tensor)."""
    if isinstance(mos, (list, tuple)):
        mos = torch.as_tensor(mos, dtype=torch.float32)
    return (mos - MOS_MEAN) / MOS_STD


def denormalise_mos(score: Union[Tensor, float]) -> Union[Tensor, float]:
    """The inverse of :func:`normalise_mos`: a model score back on the 1..5 MOS scale."""
    return score * MOS_STD + MOS_MEAN


# ---------------------------------------------------------------------------------------------------
# Parsing the official files
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Annotations:
    """The valid crops of one annotation file, in file order.

    ``boxes``: ``float64 Tensor[N, 4]`` ``(x1, y1, x2, y2)`` in original pixels, exactly as written;
    ``mos``: ``float64 Tensor[N]``; ``lines``: ``int64 Tensor[N]``, the 1-based file line of each crop;
    ``num_invalid``: how many MOS -2 lines were left out.
    """

    path: Path
    boxes: Tensor
    mos: Tensor
    lines: Tensor
    num_invalid: int = 0


def _read_rows(path: Path, fields: int, layout: str, what: str) -> Tuple[List[List[float]], List[int]]:
    """Rows of ``fields`` finite numbers with their 1-based line numbers; blank lines carry no data."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise GAICDError(path, f"{what} file is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GAICDError(path, f"cannot read the {what} file: {e}") from None
    rows: List[List[float]] = []
    lines: List[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != fields:
            raise GAICDError(path, f"expected {fields} numbers `{layout}`, found {len(parts)}: {line.strip()!r}", number)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise GAICDError(path, f"expected {fields} numbers `{layout}`, got {line.strip()!r}", number) from None
        if not all(math.isfinite(v) for v in values):
            raise GAICDError(path, f"non-finite number in {line.strip()!r}", number)
        rows.append(values)
        lines.append(number)
    if not rows:
        raise GAICDError(path, f"{what} file is empty")
    return rows, lines


def _xyxy(row: Sequence[float]) -> List[float]:
    y1, x1, y2, x2 = row[:4]
    return [x1, y1, x2, y2]


def _check_inside(path: Path, boxes: Tensor, lines: Tensor, size: Optional[Size], size_source: str) -> None:
    """Every box within ``[0, width] x [0, height]`` (the boundary itself allowed)."""
    if size is None or boxes.numel() == 0:
        return
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(1)
    outside = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)
    if bool(outside.any()):
        i = int(outside.nonzero()[0])
        box = [_num(v) for v in boxes[i].tolist()]
        raise GAICDError(
            path,
            f"box (x1, y1, x2, y2) = {tuple(box)} lies outside the {width}x{height} (width x height) image "
            f"(size from {size_source})",
            int(lines[i]),
        )


def _num(v: float) -> Union[int, float]:
    return int(v) if float(v).is_integer() else v


def read_annotations(path: PathLike, size: Optional[Size] = None, *, size_source: str = "the caller") -> Annotations:
    """Parses ``annotations/<id>.txt`` (lines ``y1 x1 y2 x2 MOS``).

    MOS -2 lines are left out (the official rule) and counted; every other line must have MOS in
    [1, 5] and a non-empty box (``x2 > x1``, ``y2 > y1``), inside ``size = (height, width)`` when
    given. A file with no line, or with only MOS -2 lines, is an error.
    """
    path = Path(path)
    rows, numbers = _read_rows(path, 5, "y1 x1 y2 x2 MOS", "annotation")
    boxes, mos, lines = [], [], []
    invalid = 0
    for row, number in zip(rows, numbers):
        score = row[4]
        if score == INVALID_MOS:
            invalid += 1
            continue
        if not MOS_RANGE[0] <= score <= MOS_RANGE[1]:
            raise GAICDError(path, f"MOS {_num(score)} is outside [1, 5] (and is not -2, the invalid-crop mark)", number)
        x1, y1, x2, y2 = box = _xyxy(row)
        if x2 <= x1 or y2 <= y1:
            raise GAICDError(
                path,
                f"crop box (y1 x1 y2 x2) = {tuple(_num(v) for v in row[:4])} is empty or inverted (need y2 > y1 and x2 > x1)",
                number,
            )
        boxes.append(box)
        mos.append(score)
        lines.append(number)
    if not boxes:
        raise GAICDError(path, f"no valid crop: all {invalid} lines have MOS -2")
    out = Annotations(
        path=path,
        boxes=torch.tensor(boxes, dtype=torch.float64),
        mos=torch.tensor(mos, dtype=torch.float64),
        lines=torch.tensor(lines, dtype=torch.int64),
        num_invalid=invalid,
    )
    _check_inside(path, out.boxes, out.lines, size, size_source)
    return out


def _parse_object_boxes(path: Path) -> Tuple[Tensor, Tensor]:
    rows, numbers = _read_rows(path, 4, "y1 x1 y2 x2", "object-box")
    boxes = []
    for row, number in zip(rows, numbers):
        x1, y1, x2, y2 = box = _xyxy(row)
        # Zero-size boxes are allowed: the official files hold a few (e.g. "1 0 1 1", detector padding).
        if x2 < x1 or y2 < y1:
            raise GAICDError(
                path, f"object box (y1 x1 y2 x2) = {tuple(_num(v) for v in row)} is inverted (need y2 >= y1 and x2 >= x1)", number
            )
        boxes.append(box)
    return torch.tensor(boxes, dtype=torch.float64), torch.tensor(numbers, dtype=torch.int64)


def read_object_boxes(path: PathLike, size: Optional[Size] = None, *, size_source: str = "the caller") -> Tensor:
    """Parses ``bbox/<id>.txt`` (lines ``y1 x1 y2 x2``) into a ``float64 Tensor[D, 4]`` ``(x1, y1, x2,
    y2)`` in original pixels, file order (the detector's ranking). Zero-size boxes are kept (the
    official files have a few); inverted ones, boxes outside ``size = (height, width)`` and empty
    files are errors."""
    path = Path(path)
    boxes, lines = _parse_object_boxes(path)
    _check_inside(path, boxes, lines, size, size_source)
    return boxes


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GAICDError(path, f"{what} is missing") from None
    except json.JSONDecodeError as e:
        raise GAICDError(path, f"not valid JSON: {e.msg}", e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise GAICDError(path, f"cannot read {what}: {e}") from None


def read_split(path: PathLike) -> Dict[str, List[str]]:
    """``split.json``: ``{"train": [ids], "test": [ids]}`` -> ``{split: [id strings]}`` (file order)."""
    path = Path(path)
    data = _read_json(path, "the split file")
    if not isinstance(data, dict) or not data:
        raise GAICDError(path, 'expected an object {"train": [ids], "test": [ids]}')
    out = {}
    for name, ids in data.items():
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
            raise GAICDError(path, f"split {name!r} must be a list of image ids (strings)")
        out[str(name)] = [str(i) for i in ids]
    return out


def read_image_sizes(path: PathLike) -> Dict[str, Size]:
    """``image_sizes.json``: ``{id: [width, height]}`` -> ``{id: (height, width)}`` (note the swap)."""
    path = Path(path)
    data = _read_json(path, "the image-size file")
    if not isinstance(data, dict):
        raise GAICDError(path, "expected an object {id: [width, height]}")
    out = {}
    for key, value in data.items():
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        ):
            raise GAICDError(path, f"entry {key!r}: expected [width, height] positive integers, got {value!r}")
        out[str(key)] = (value[1], value[0])
    return out


def find_image(root: PathLike, split: str, image_id: str) -> Optional[Path]:
    """``root/images/<split>/<id><ext>`` for the first extension of :data:`IMAGE_EXTENSIONS` present."""
    folder = Path(root) / "images" / split
    for ext in IMAGE_EXTENSIONS:
        p = folder / f"{image_id}{ext}"
        if p.is_file():
            return p
    return None


def _load_image(path: Path) -> Image.Image:
    """The photo, upright and in 8-bit RGB: the package's one image path (EXIF orientation applied, as
    ``cv2.imread``, which the official code uses, does)."""
    try:
        return to_rgb(load_image(path))
    except FileNotFoundError:
        raise GAICDError(path, "image is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GAICDError(path, f"cannot decode the image: {e}") from None


# ---------------------------------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------------------------------
def flip_boxes(boxes: Tensor, width: float) -> Tensor:
    """Boxes of an image mirrored left-right: ``x1' = width - x2``, ``x2' = width - x1``. Its own inverse."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([width - x2, y1, width - x1, y2], dim=-1)


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
        preprocess: the pre-processing (default :class:`~s2c_ops.transforms.OfficialPreprocess`).
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
        _check_inside(ann.path, ann.boxes, ann.lines, size, size_source)
        return ann

    def _objects(self, image_id: str, size: Size, size_source: str) -> Tensor:
        path = self.bbox_path(image_id)
        cached = self._object_cache.get(image_id)
        if cached is None:
            cached = _parse_object_boxes(path)
            self._object_cache[image_id] = cached
        boxes, lines = cached
        _check_inside(path, boxes, lines, size, size_source)
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
            picture = _load_image(path)
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
