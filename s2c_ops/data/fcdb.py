"""FCDB, the Flickr Cropping Dataset (Chen et al., WACV 2017): real photos with one human crop each and
crop pairs judged by five people.

Two layouts are read (``root`` is the folder):

* **This project's** (``../shared/data/FCDB``): ``train.json``, a list of ``{"file", "width", "height",
  "crop": [x, y, w, h], "pairs": [{"crop_0", "crop_1", "votes_0", "votes_1"}, ...]}``, photos in
  ``images/<file>``.
* **The original release** (github yiling-chen/flickr-cropping-dataset): ``cropping_training_set.json`` /
  ``cropping_testing_set.json`` (``[{"url", "flickr_photo_id", "crop": [x, y, w, h]}]``), and
  ``ranking_annotation.json`` (``[{"url", "crops": [{"crop_0", "crop_1", "vote_for_0", "vote_for_1"}]}]``,
  joined to the photos by the URL's file name), photos named by the last part of their URL, in
  ``images/``, ``data/`` or ``root`` itself.

Splits: ``"train"`` and ``"test"`` as the files give them (this project's layout has ``train`` only);
``"val"``, the fixed validation list shipped in the package (:data:`VALIDATION`, 200 of the 1,338 training
photos of this project's copy, drawn once with seed 0: tune on it alone); ``"fit"``, ``"train"`` without
them.

Boxes are ``(x1, y1, x2, y2)`` in pixels of the photo as stored (the annotations were made on the stored
pixels, so EXIF orientation is not applied). A box reaching past the border is clipped to the photo; one
that keeps less than half of its area inside, or none, is dropped, and so is a human crop of an aspect ratio
the photo holds no candidate of (a crop 1 px wide); :attr:`FCDB.report` counts them and names the photos.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..cropping.candidates import MIN_CROP_SIDE, largest_crop
from ..cropping.images import load_image, to_rgb
from ..cropping.transforms import OfficialPreprocess
from ..json_values import finite_number

__all__ = ["FCDB", "FCDBError", "FCDBPhoto", "BoxReport", "VALIDATION", "fcdb_splits", "is_fcdb", "read_fcdb",
           "validation_files"]

PathLike = Union[str, "os.PathLike[str]"]
#: The validation list's file inside the package (one photo file name a line).
VALIDATION = "fcdb_validation.txt"
_SHARED = "train.json"
_RELEASE = {"train": "cropping_training_set.json", "test": "cropping_testing_set.json"}
_RANKING = "ranking_annotation.json"
_PHOTO_FOLDERS = ("images", "data", ".")
MIN_KEPT = 0.5  # a box past the border keeps at least this share of its area, or is dropped


class FCDBError(ValueError):
    """Malformed or missing FCDB data; the message names the file (and the entry)."""


@dataclass(frozen=True)
class FCDBPhoto:
    """One annotated photo: ``crop`` (4,) the human crop (``None`` when it was dropped); ``pairs``
    (P, 2, 4) judged crop pairs and ``votes`` (P, 2) the votes for each side (float32)."""

    file: str
    path: Path
    size: Tuple[int, int]  # (height, width)
    crop: Optional[Tensor]
    pairs: Tensor
    votes: Tensor


@dataclass
class BoxReport:
    """Boxes that reached past a photo's border: clipped (kept) or dropped, with the photos named."""

    clipped: int = 0
    dropped: int = 0
    photos: Dict[str, List[str]] = field(default_factory=dict)

    def note(self, file: str, what: str, kept: bool) -> None:
        if kept:
            self.clipped += 1
        else:
            self.dropped += 1
        self.photos.setdefault(file, []).append(f"{what} {'clipped' if kept else 'dropped'}")

    def __str__(self) -> str:
        if not self.clipped and not self.dropped:
            return "every box inside its photo"
        names = ", ".join(sorted(self.photos)[:5]) + (", ..." if len(self.photos) > 5 else "")
        return f"{self.clipped} boxes past the border clipped, {self.dropped} dropped ({len(self.photos)} photos: {names})"


def validation_files() -> List[str]:
    """The fixed validation list shipped in the package (photo file names)."""
    text = (resources.files("s2c_ops.data") / VALIDATION).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FCDBError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise FCDBError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise FCDBError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise FCDBError(f"{path}: nested deeper than the JSON reader goes") from None


def _xywh(value: Any, where: str) -> List[float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 4 and all(finite_number(v) for v in value)
    if not ok:
        raise FCDBError(f"{where}: expected [x, y, w, h] finite numbers, got {_shown(value)}")
    return [float(v) for v in value]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any, where: str, what: str, whole: bool = False) -> float:
    """``value`` as a finite number (a whole one > 0 with ``whole``), else :class:`FCDBError` naming it."""
    if not finite_number(value) or (whole and (value < 1 or value != int(value))):  # 640.0 is whole, 640.5 is not
        raise FCDBError(f"{where}: {what} must be {'a whole number > 0' if whole else 'a number'}, got {_shown(value)}")
    return value


def _clip(box: List[float], height: int, width: int, file: str, what: str, report: BoxReport) -> Optional[List[float]]:
    """``[x, y, w, h]`` -> ``(x1, y1, x2, y2)`` inside the photo, or ``None`` when dropped."""
    x, y, w, h = box
    x1, y1, x2, y2 = x, y, x + w, y + h
    if w > 0 and h > 0 and x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height:
        return [x1, y1, x2, y2]
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    inside = max(cx2 - cx1, 0.0) * max(cy2 - cy1, 0.0)
    kept = w > 0 and h > 0 and inside >= MIN_KEPT * w * h
    report.note(file, what, kept)
    return [cx1, cy1, cx2, cy2] if kept else None


def _human_crop(value: Any, where: str, height: int, width: int, file: str, report: BoxReport) -> Optional[List[float]]:
    """The human crop ``[x, y, w, h]`` as :func:`_clip` gives it, also dropped (and noted) where the photo has
    no candidate of its aspect ratio (both sides at least ``MIN_CROP_SIDE``: a crop 1 px wide, say), which
    the ratio-given protocol and training could not score."""
    crop = _clip(_xywh(value, where), height, width, file, "crop", report)
    if crop is not None and min(largest_crop(height, width, (crop[2] - crop[0]) / (crop[3] - crop[1]))) < MIN_CROP_SIDE:
        report.note(file, "crop (no candidate of its ratio)", kept=False)
        return None
    return crop


def _find_photo(root: Path, file: str) -> Optional[Path]:
    for folder in _PHOTO_FOLDERS:
        path = root / folder / file
        if path.is_file():
            return path
    return None


def _pairs(entries: Sequence[Any], keys: Tuple[str, str, str, str], height: int, width: int, file: str,
           where: str, report: BoxReport) -> Tuple[Tensor, Tensor]:
    boxes, votes = [], []
    if not isinstance(entries, list):
        raise FCDBError(f"{where}: the pairs must be a list, got {entries!r}")
    for j, pair in enumerate(entries):
        if not isinstance(pair, dict) or any(k not in pair for k in keys):
            raise FCDBError(f"{where}: pair {j} needs {', '.join(keys)}")
        a = _clip(_xywh(pair[keys[0]], f"{where}: pair {j}"), height, width, file, f"pair {j} crop 0", report)
        b = _clip(_xywh(pair[keys[1]], f"{where}: pair {j}"), height, width, file, f"pair {j} crop 1", report)
        if a is None or b is None:
            continue
        boxes.append([a, b])
        votes.append([float(_number(pair[k], f"{where}: pair {j}", k)) for k in keys[2:]])
    return (torch.tensor(boxes, dtype=torch.float32).reshape(-1, 2, 4),
            torch.tensor(votes, dtype=torch.float32).reshape(-1, 2))


def _photo_size(path: Path) -> Tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise FCDBError(f"{path}: cannot read the photo: {e}") from None


def read_fcdb(root: PathLike, split: str = "train", validation: Optional[Sequence[str]] = None
              ) -> Tuple[List[FCDBPhoto], BoxReport]:
    """The photos of ``split`` (``"train"``, ``"test"``, ``"val"``, ``"fit"``) with their annotations, in the
    annotation file's order, and the report of boxes clipped or dropped. Photos whose file is missing are
    an error naming the first. ``validation``: the photo files of ``"val"`` (default: the package's list,
    :func:`validation_files`)."""
    root = Path(root)
    held = fcdb_splits(root)
    if split not in held:
        raise FCDBError(f"{root} has no FCDB split {split!r}; its splits: {', '.join(held) or 'none'}")
    base = "train" if split in ("val", "fit") else split
    report = BoxReport()
    photos: List[FCDBPhoto] = []
    missing: List[str] = []
    if _shared_layout(root):
        entries = _read_json(root / _SHARED)
        if not isinstance(entries, list):
            raise FCDBError(f"{root / _SHARED}: expected a list of photos")
        for i, e in enumerate(entries):
            where = f"{root / _SHARED}: entry {i}"
            if not isinstance(e, dict) or not all(k in e for k in ("file", "width", "height", "crop")):
                raise FCDBError(f"{where}: needs file, width, height and crop")
            file = e["file"]
            if not isinstance(file, str) or not file or os.path.isabs(file) or ".." in Path(file).parts:
                raise FCDBError(f"{where}: file must name a photo in the folder's images/, got {_shown(file)}")
            width, height = (int(_number(e[k], where, k, whole=True)) for k in ("width", "height"))
            path = _find_photo(root, file)
            if path is None:
                missing.append(file)
                continue
            crop = _human_crop(e["crop"], where, height, width, file, report)
            pairs, votes = _pairs(e.get("pairs", []), ("crop_0", "crop_1", "votes_0", "votes_1"), height, width,
                                  file, where, report)
            photos.append(FCDBPhoto(file, path, (height, width), None if crop is None else torch.tensor(crop),
                                    pairs, votes))
    else:
        crops_file = root / _RELEASE[base]
        entries = _read_json(crops_file)
        ranking: Dict[str, list] = {}
        if (root / _RANKING).is_file():
            for r in _read_json(root / _RANKING):
                if isinstance(r, dict) and isinstance(r.get("url"), str):
                    ranking[r["url"].rsplit("/", 1)[-1]] = r.get("crops", [])
        if not isinstance(entries, list):
            raise FCDBError(f"{crops_file}: expected a list of photos")
        for i, e in enumerate(entries):
            where = f"{crops_file}: entry {i}"
            if not isinstance(e, dict) or not isinstance(e.get("url"), str) or "crop" not in e:
                raise FCDBError(f"{where}: needs url and crop")
            file = e["url"].rsplit("/", 1)[-1]
            path = _find_photo(root, file)
            if path is None:
                missing.append(file)
                continue
            height, width = _photo_size(path)
            crop = _human_crop(e["crop"], where, height, width, file, report)
            pairs, votes = _pairs(ranking.get(file, []), ("crop_0", "crop_1", "vote_for_0", "vote_for_1"), height,
                                  width, file, f"{root / _RANKING} ({file})", report)
            photos.append(FCDBPhoto(file, path, (height, width), None if crop is None else torch.tensor(crop),
                                    pairs, votes))
    if missing:
        raise FCDBError(f"{root}: {len(missing)} annotated photos are missing (first: {missing[0]}); "
                        f"photos go in {root / 'images'}")
    seen: Dict[str, int] = {}
    for i, photo in enumerate(photos):
        if seen.setdefault(photo.file, i) != i:  # one photo, one human crop: a repeat would count twice
            raise FCDBError(f"{root}: photo {photo.file} is annotated twice (entries {seen[photo.file]} and {i} of "
                            f"split {base!r})")
    if split in ("val", "fit"):
        chosen = set(validation_files() if validation is None else validation)
        photos = [p for p in photos if (p.file in chosen) == (split == "val")]
    return photos, report


def _shared_layout(root: Path) -> bool:
    return (root / _SHARED).is_file() and not (root / _RELEASE["train"]).is_file()


def fcdb_splits(root: PathLike) -> List[str]:
    """The splits the FCDB folder ``root`` holds: ``train``, ``val`` and ``fit`` with training annotations,
    ``test`` with the original release's test file (this project's layout has none)."""
    root = Path(root)
    train = _shared_layout(root) or (root / _RELEASE["train"]).is_file()
    test = not _shared_layout(root) and (root / _RELEASE["test"]).is_file()
    return (["train"] if train else []) + (["test"] if test else []) + (["val", "fit"] if train else [])


def is_fcdb(root: PathLike) -> bool:
    """Whether ``root`` holds FCDB in one of the two layouts (rather than, say, GAICD)."""
    root = Path(root)
    return (root / _SHARED).is_file() or any((root / f).is_file() for f in _RELEASE.values())


class FCDB(Dataset):
    """FCDB as a ``Dataset`` (see the module docstring for layouts and splits).

    Items (``dict``): ``file``; ``path`` (the photo's file, ``str``); ``image`` (3, h, w) float32 normalised as the official pre-processing
    does (with ``pixels=True``; ``resized``, the same before normalisation, in [0, 255]); ``geometry``
    (:class:`~s2c_ops.cropping.transforms.Resize`); ``size`` (H, W); ``crop`` (4,) or ``None``;
    ``pairs`` (P, 2, 4) and ``votes`` (P, 2), all boxes in the photo's pixels.
    """

    def __init__(self, root: PathLike, split: str = "train", *, pixels: bool = True,
                 preprocess: Optional[OfficialPreprocess] = None, validation: Optional[Sequence[str]] = None) -> None:
        self.root = Path(root)
        self.split = split
        self.pixels = pixels
        self.preprocess = preprocess or OfficialPreprocess()
        self.photos, self.report = read_fcdb(root, split, validation)

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        photo = self.photos[index]
        item: Dict[str, Any] = {"file": photo.file, "path": str(photo.path), "size": photo.size, "crop": photo.crop, "pairs": photo.pairs,
                                "votes": photo.votes}
        if self.pixels:
            try:
                image = to_rgb(load_image(photo.path, apply_exif_orientation=False))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                raise FCDBError(f"{photo.path}: cannot decode the photo: {e}") from None
            if (image.height, image.width) != photo.size:
                raise FCDBError(f"{photo.path}: the photo is {image.width}x{image.height}, the annotations say "
                                f"{photo.size[1]}x{photo.size[0]}")
            resized, geometry = self.preprocess.resize(image, apply_exif_orientation=False)
            item.update(resized=resized, image=self.preprocess.normalise(resized), geometry=geometry)
        return item

    def __repr__(self) -> str:
        return f"FCDB(root={str(self.root)!r}, split={self.split!r}, photos={len(self)}; {self.report})"
