"""GAICD's official files (the S2CNet layout): parsing, checking, the MOS scale.

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
out are MOS -2 crops (the official rule). Lines holding only white space carry no data and are passed over.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torch import Tensor

from ..cropping.images import load_image, to_rgb

__all__ = [
    "GAICDError",
    "Annotations",
    "IMAGE_EXTENSIONS",
    "INVALID_MOS",
    "MOS_MEAN",
    "MOS_STD",
    "denormalise_mos",
    "find_image",
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


def check_inside(path: Path, boxes: Tensor, lines: Tensor, size: Optional[Size], size_source: str) -> None:
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
    check_inside(path, out.boxes, out.lines, size, size_source)
    return out


def parse_object_boxes(path: Path) -> Tuple[Tensor, Tensor]:
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
    boxes, lines = parse_object_boxes(path)
    check_inside(path, boxes, lines, size, size_source)
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


def load_photo(path: Path) -> Image.Image:
    """The photo, upright and in 8-bit RGB: the package's one image path (EXIF orientation applied, as
    ``cv2.imread``, which the official code uses, does)."""
    try:
        return to_rgb(load_image(path))
    except FileNotFoundError:
        raise GAICDError(path, "image is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise GAICDError(path, f"cannot decode the image: {e}") from None
