"""``CropTable``: each image's best candidate crops per ratio, scored once and reused every epoch.

An aesthetic crop depends on the image alone, so a training run that crops the same photos every epoch
needs their scores once. The table holds, per image and ratio, the ``candidates`` best crops (boxes in the
pixels of the image as it was scored, with that image's (height, width), so a later resize that keeps its
aspect scales them; their scores after the Cropper's face rule), best first; ``AestheticCrop(...,
table=table)`` draws one of them each epoch instead of scoring the image again.

Three ways to fill it, all through :meth:`CropTable.fill` (``Cropper.crop_ratios`` with ``top_k =
candidates``, so ``top_k=1`` gives ``Cropper.crop``'s crop): lazily (``AestheticCrop`` scores what the table
lacks), :meth:`CropTable.build` over a dataset, and ``s2c table`` over files (resumable, sharded under
torchrun).

On disk: one safetensors file (no pickle; memory-mapped when read), written atomically, whose metadata
names the model (its weights digest, as ``s2c crop`` records it), the ratios, the proposer, the key kind
and the number of candidates. A table is refused (:class:`TableMismatch`, one line) by a use that differs
in any of them. Keys: :mod:`.table_keys`.
"""
from __future__ import annotations

import functools
import json
import math
import numbers
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..files import write_atomic
from .candidates import parse_ratio
from .images import ImageLike, image_to_tensor
from .table_keys import KEY_KINDS, KeyLike, explicit_keys, fingerprints, key_tensor

FORMAT = "s2c-crop-table/1"
#: Candidates kept per image and ratio: enough for ``top_k`` sampling (``top_k`` above it draws among these).
DEFAULT_CANDIDATES = 16
PathLike = Union[str, "os.PathLike[str]"]
RatioLike = Union[float, str]


class TableMismatch(ValueError):
    """A crop table used with another model, ratio, proposer, key kind or candidate count than it was made
    with; the message says which and how to rebuild."""


class TableMiss(KeyError):
    """Images a table without lazy filling does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument
        return str(self.args[0])


@functools.lru_cache(maxsize=1)
def default_model_digest() -> str:
    """The weights digest of the package's default model (loaded once, then let go)."""
    from ..models.registry import create_model
    from ..models.weights import weights_digest

    return weights_digest(create_model("default"))


def model_identity(model: Optional[Callable[..., Tensor]]) -> str:
    """What a table records of its model: the weights digest of a module (``None``: the default model's),
    the qualified name of another callable."""
    if model is None:
        return default_model_digest()
    if isinstance(model, nn.Module):
        from ..models.weights import weights_digest

        return weights_digest(model)
    return "callable:" + getattr(model, "__qualname__", type(model).__qualname__)


def proposer_identity(proposer: Any) -> str:
    """A proposer's name in a table: ``"default"`` for ``None``, a registry name as given, else its class."""
    if proposer is None:
        return "default"
    if isinstance(proposer, str):
        return proposer.lower()
    return type(proposer).__name__


def _ratio_text(ratios: Sequence[float]) -> str:
    return ", ".join(f"{r:.6g}" for r in ratios)


class CropTable:
    """Per image (one key each, see :mod:`.table_keys`) and ratio, the ``candidates`` best crops and scores.

    ``CropTable(keys="index")`` is empty and unbound: the first use (``AestheticCrop(table=...)``,
    :meth:`build`, :meth:`bind`) sets its ratios, model and proposer. ``lazy``: a lookup of an image it
    lacks scores the image and adds it (:meth:`fill`); without it the lookup raises :class:`TableMiss`
    (what a table that should cover the dataset wants: no model is ever loaded). Tables are not
    thread-safe while they fill.

    Attributes: ``keys`` (the key kind), ``candidates``, ``lazy``, and once bound ``ratios`` (tuple of
    floats), ``model`` (the weights digest, or a callable's name) and ``proposer``.
    """

    def __init__(self, keys: str = "index", *, candidates: int = DEFAULT_CANDIDATES, lazy: bool = True) -> None:
        if keys not in KEY_KINDS:
            raise ValueError(f"keys must be one of {KEY_KINDS}, got {keys!r}")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates must be an int >= 1, got {candidates!r}")
        self.keys = keys
        self.candidates = candidates
        self.lazy = bool(lazy)
        self.ratios: Optional[Tuple[float, ...]] = None
        self.model: Optional[str] = None
        self.proposer: Optional[str] = None
        self._keys = torch.empty(0, dtype=torch.int64)
        self._sizes = torch.empty(0, 2, dtype=torch.int32)
        self._boxes = torch.empty(0, 0, candidates, 4)
        self._scores = torch.empty(0, 0, candidates)
        self._pending: Dict[int, Tuple[Tensor, Tensor, Tensor]] = {}
        #: Metadata of the file the table was loaded from, besides its own (what ``save(extra=)`` wrote).
        self.extra: Dict[str, str] = {}

    # -- identity ----------------------------------------------------------------------------------
    def bind(self, ratios: Sequence[RatioLike], model: str, proposer: str) -> "CropTable":
        """Sets the ratios, model identity and proposer of an unbound table; a bound one must hold every
        ratio asked for with the same model and proposer (:class:`TableMismatch` otherwise)."""
        values = tuple(parse_ratio(r) for r in ratios)
        if not values:
            raise ValueError("give at least one ratio")
        if self.ratios is None:
            self.ratios = tuple(dict.fromkeys(values))
            self.model, self.proposer = model, proposer
            self._boxes = torch.empty(0, len(self.ratios), self.candidates, 4)
            self._scores = torch.empty(0, len(self.ratios), self.candidates)
            return self
        missing = [r for r in values if self._find_ratio(r) is None]
        if missing:
            raise TableMismatch(f"the crop table holds ratios {_ratio_text(self.ratios)}, not {_ratio_text(missing)}: "
                                "build one for these ratios")
        if model != self.model:
            raise TableMismatch(f"the crop table was made by model {self.model}, this use has {model}: build it "
                                "again with this model")
        if proposer != self.proposer:
            raise TableMismatch(f"the crop table was made with proposer {self.proposer!r}, this use has "
                                f"{proposer!r}: build it again with this proposer")
        return self

    def same_kind(self, other: "CropTable") -> None:
        """:class:`TableMismatch` unless ``other`` was made with the same ratios, model, proposer, key kind
        and number of candidates."""
        for name in ("ratios", "model", "proposer", "keys", "candidates"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise TableMismatch(f"crop tables differ in {name}: {mine!r} and {theirs!r}")

    def _find_ratio(self, ratio: float) -> Optional[int]:
        for i, r in enumerate(self.ratios or ()):
            if math.isclose(r, ratio, rel_tol=1e-9):
                return i
        return None

    def ratio_index(self, ratio: RatioLike) -> int:
        """Where ``ratio`` sits in :attr:`ratios` (:class:`TableMismatch` when the table lacks it)."""
        value = parse_ratio(ratio)
        i = self._find_ratio(value)
        if i is None:
            raise TableMismatch(f"the crop table holds ratios {_ratio_text(self.ratios or ())}, not {value:.6g}")
        return i

    # -- contents ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keys) + len(self._pending)

    def __repr__(self) -> str:
        ratios = "unbound" if self.ratios is None else f"ratios=({_ratio_text(self.ratios)})"
        return f"CropTable({len(self)} images, keys={self.keys!r}, candidates={self.candidates}, {ratios}, lazy={self.lazy})"

    def add(self, keys: Tensor, sizes: Tensor, boxes: Tensor, scores: Tensor) -> None:
        """Adds images: ``keys`` (n,) int64, ``sizes`` (n, 2) (height, width) of each image as scored,
        ``boxes`` (n, R, k, 4) in those pixels and ``scores`` (n, R, k), best first (k <= ``candidates``; fewer
        are padded with score ``-inf``). A key already held keeps its first entry."""
        if self.ratios is None:
            raise ValueError("the crop table is not bound to ratios yet (bind() or build() it first)")
        n, r, k = scores.shape
        if r != len(self.ratios) or k > self.candidates or boxes.shape != (n, r, k, 4) or keys.shape != (n,) \
                or sizes.shape != (n, 2):
            raise ValueError(f"add() needs ({n},) keys, ({n}, 2) sizes, ({n}, {len(self.ratios)}, k <= "
                             f"{self.candidates}, 4) boxes and matching scores")
        pad = self.candidates - k
        boxes = torch.cat([boxes.float().cpu(), boxes.new_zeros(n, r, pad, 4).float().cpu()], 2)
        scores = torch.cat([scores.float().cpu(), torch.full((n, r, pad), -math.inf)], 2)
        sizes = sizes.to(torch.int32).cpu()
        keys = keys.cpu().to(torch.int64)
        new = self._rows(keys) < 0
        if self._pending:
            new &= torch.tensor([k not in self._pending for k in keys.tolist()], dtype=torch.bool)
        _, inverse = torch.unique(keys, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1 if n else 0,), n).scatter_reduce(0, inverse, torch.arange(n), "amin")
        new[torch.ones(n, dtype=torch.bool).index_fill_(0, first, False)] = False  # a key twice: its first entry
        index = new.nonzero().flatten()
        if len(index) >= 4096:  # many at once (build, merging files): straight into the arrays
            self._consolidate()
            self._insert(keys[index], sizes[index], boxes[index], scores[index])
            return
        for i in index.tolist():
            self._pending[int(keys[i])] = (sizes[i], boxes[i], scores[i])
        if len(self._pending) >= max(4096, len(self._keys) // 8):
            self._consolidate()

    def _consolidate(self) -> None:
        """Pending entries into the sorted arrays (geometrically often: amortised O(1) per image)."""
        if not self._pending:
            return
        keys = torch.tensor(list(self._pending), dtype=torch.int64)
        sizes, boxes, scores = (torch.stack(v) for v in zip(*self._pending.values()))
        self._pending = {}
        self._insert(keys, sizes, boxes, scores)

    def _insert(self, keys: Tensor, sizes: Tensor, boxes: Tensor, scores: Tensor) -> None:
        """New keys (none held) into the sorted arrays."""
        keys, order = torch.sort(torch.cat([self._keys, keys]), stable=True)
        self._keys = keys
        self._sizes = torch.cat([self._sizes, sizes])[order]
        self._boxes = torch.cat([self._boxes, boxes])[order]
        self._scores = torch.cat([self._scores, scores])[order]

    def _rows(self, keys: Tensor) -> Tensor:
        """Row of each key in the sorted arrays, -1 where absent."""
        if len(self._keys) == 0:
            return torch.full(keys.shape, -1, dtype=torch.long)
        at = torch.searchsorted(self._keys, keys).clamp_max(len(self._keys) - 1)
        return torch.where(self._keys[at] == keys, at, torch.full_like(at, -1))

    def lookup(self, keys: Tensor, size: Tuple[int, int], ratio: RatioLike,
               names: Optional[Sequence[Union[str, os.PathLike]]] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """For images of ``size`` (height, width) with ``keys`` (B,): ``found`` (B,) bool, and the candidate
        ``boxes`` (B, k, 4) in pixels of that size and ``scores`` (B, k) of ``ratio`` (rows of missing images
        are zeros and ``-inf``). A fingerprint counts only when the stored size is ``size``; other keys
        scale the stored boxes to ``size``, which must have the stored aspect (:class:`TableMismatch`, naming
        the image by ``names``, the keys as the caller gave them, when given)."""
        j = self.ratio_index(ratio)
        keys = _key_tensor(keys)
        if not (len(size) == 2 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                                       for v in size)):
            raise ValueError(f"size must be the images' (height, width), two ints >= 1, got {size!r}")
        b, k = len(keys), self.candidates
        rows = self._rows(keys)
        hit = rows >= 0
        if len(self._keys):
            # Whole-row gathers, then a mask: indexing with a tensor and an int together, or assigning
            # through a boolean mask, took milliseconds per batch with 2 threads here.
            safe = rows.clamp_min(0)
            sizes = self._sizes.index_select(0, safe)
            boxes = self._boxes.index_select(0, safe)[:, j].contiguous()
            scores = self._scores.index_select(0, safe)[:, j].contiguous()
        else:
            sizes = torch.zeros(b, 2, dtype=torch.int32)
            boxes, scores = torch.zeros(b, k, 4), torch.full((b, k), -math.inf)
        for i in (~hit).nonzero().flatten().tolist():
            entry = self._pending.get(int(keys[i]))
            if entry is not None:
                sizes[i], boxes[i], scores[i] = entry[0], entry[1][j], entry[2][j]
                hit[i] = True
        height, width = size
        if self.keys == "fingerprint":
            hit &= (sizes[:, 0] == height) & (sizes[:, 1] == width)
        else:
            self._check_aspect(keys, sizes, hit, size, names)
            scale = torch.tensor([width, height, width, height], dtype=torch.float32) / sizes[:, [1, 0, 1, 0]].clamp_min(1)
            same = (sizes[:, 0] == height) & (sizes[:, 1] == width)
            boxes = torch.where(same[:, None, None], boxes, boxes * scale[:, None, :])
        boxes = torch.where(hit[:, None, None], boxes, torch.zeros(()))
        scores = torch.where(hit[:, None], scores, torch.full((), -math.inf))
        return hit, boxes, scores

    def _check_aspect(self, keys: Tensor, sizes: Tensor, hit: Tensor, size: Tuple[int, int],
                      names: Optional[Sequence[Union[str, os.PathLike]]] = None) -> None:
        """Raises :class:`TableMismatch` where a held image was scored at another aspect than ``size`` (height,
        width): its boxes scale to a resize of that image (each side of either size rounded, within a pixel),
        never to another crop or photo under the same key, whose crops would lose their ratio."""
        height, width = size
        h, w = sizes[:, 0].double(), sizes[:, 1].double()
        other = hit & ((width * h - height * w).abs() > h + w + height + width)
        if bool(other.any()):
            i = int(other.nonzero()[0])
            raise TableMismatch(
                f"{int(other.sum())} image(s) of this batch have another aspect than when the crop table scored "
                f"them (key {_key_name(keys, names, i)}: {height}x{width} now, {int(h[i])}x{int(w[i])} in the table): a table "
                f"keyed by {self.keys} scales its crops to a resized image, not to another crop or photo under "
                "the same key; key the table by fingerprint for images that change, or rebuild it")

    def keys_of(self, images: Tensor, keys: Optional[Union[Tensor, Sequence[KeyLike]]]) -> Tensor:
        """The int64 keys (CPU) of a (B, 3, H, W) batch: its fingerprints, or the ``keys`` given with it."""
        if self.keys == "fingerprint":
            if keys is not None:
                raise ValueError("this crop table is keyed by fingerprint: it finds images by their pixels, pass no keys")
            return fingerprints(images).cpu()
        if keys is None:
            raise ValueError(f"this crop table is keyed by {self.keys}: pass keys=... (one per image) with the batch")
        return explicit_keys(keys, self.keys, len(images))

    def missing(self, keys: Tensor, size: Tuple[int, int], ratio: RatioLike,
                names: Optional[Sequence[Union[str, os.PathLike]]] = None) -> TableMiss:
        """The error for images the table lacks (without lazy filling); ``names``: the keys as the caller gave
        them (paths rather than their hashes), one per key."""
        shown = ", ".join(_key_name(keys, names, i) for i in range(min(3, len(keys))))
        return TableMiss(f"{len(keys)} image(s) of this batch are not in the crop table ({len(self)} images; keys "
                         f"{shown}{', ...' if len(keys) > 3 else ''}; size {size[0]}x{size[1]}, ratio "
                         f"{parse_ratio(ratio):.6g}): build it over the whole dataset, or load it with lazy=True "
                         "to score what it lacks")

    # -- filling -----------------------------------------------------------------------------------
    def score(self, cropper, images: Sequence[ImageLike]) -> Tuple[Tensor, Tensor, Tensor]:
        """(sizes (n, 2), boxes (n, R, k, 4), scores (n, R, k)) of photos (upright 8-bit RGB as
        :func:`~s2c_ops.cropping.images.image_to_tensor` gives them), scored by ``cropper`` in one
        ``crop_ratios`` call: the table's one scoring path."""
        if self.ratios is None:
            raise ValueError("the crop table is not bound to ratios yet")
        results = cropper.crop_ratios(list(images), list(self.ratios), top_k=self.candidates)
        k = self.candidates
        boxes = torch.zeros(len(images), len(self.ratios), k, 4)
        scores = torch.full((len(images), len(self.ratios), k), -math.inf)
        for i, per_ratio in enumerate(results):
            for j, r in enumerate(per_ratio):
                boxes[i, j, : len(r.boxes)] = r.boxes.float().cpu()
                scores[i, j, : len(r.scores)] = r.scores.float().cpu()
        sizes = torch.tensor([list(im.shape[-2:]) for im in images], dtype=torch.int32).reshape(-1, 2)
        return sizes, boxes, scores

    def fill(self, cropper, images: Sequence[ImageLike], keys: Optional[Tensor] = None) -> Tensor:
        """Scores ``images`` and adds them under ``keys`` (their fingerprints for a fingerprint table);
        returns the keys. PIL images are made upright 8-bit RGB first."""
        pixels = [image_to_tensor(im) for im in images]
        if keys is None:
            if self.keys != "fingerprint":
                raise ValueError(f"this crop table is keyed by {self.keys}: fill() needs the keys")
            keys = torch.cat([fingerprints(p[None]).cpu() for p in pixels]) if pixels else torch.empty(0, dtype=torch.int64)
        keys = _key_tensor(keys)
        if len(keys) != len(pixels):
            raise ValueError(f"fill() got {len(keys)} keys for {len(pixels)} images: give one key per image")
        if len(pixels):
            self.add(keys, *self.score(cropper, pixels))
        return keys

    def update(self, other: "CropTable") -> None:
        """Adds the images of ``other`` (made the same way, :meth:`same_kind`) that this table lacks."""
        if self.ratios is None:
            self.bind(other.ratios or (), other.model or "", other.proposer or "")
        self.same_kind(other)
        other._consolidate()
        self.add(other._keys, other._sizes, other._boxes, other._scores)

    @classmethod
    def build(
        cls,
        dataset: Union[Sequence[Any], Iterable[Any]],
        ratios: Sequence[RatioLike],
        *,
        model: Optional[Callable[..., Tensor]] = None,
        proposer: Optional[Any] = None,
        keys: str = "index",
        key_of: Optional[Callable[[int, Any], KeyLike]] = None,
        image_of: Optional[Callable[[Any], ImageLike]] = None,
        candidates: int = DEFAULT_CANDIDATES,
        batch_size: int = 16,
        device: Optional[Union[str, torch.device]] = None,
        progress: bool = True,
        lazy: bool = False,
    ) -> "CropTable":
        """A table of every item of ``dataset`` (a sequence or an iterable), scored ``batch_size`` at a time
        with a progress bar (tqdm). ``image_of(item)`` is its photo (default: the item, or its first element
        for a tuple or list), as ``AestheticCrop`` will see it for a fingerprint table. ``key_of(index, item)``
        gives path keys (``keys="path"``); index keys are the positions. ``model`` / ``proposer`` as in
        :class:`~s2c_ops.Cropper` (``None``: the defaults); ``lazy`` is the returned table's."""
        from tqdm import tqdm

        from .cropper import Cropper

        if keys == "path" and key_of is None:
            raise ValueError("keys='path' needs key_of(index, item) -> the item's file path")
        table = cls(keys, candidates=candidates, lazy=lazy)
        table.bind(ratios, model_identity(model), proposer_identity(proposer))
        cropper = Cropper(model, proposer, batch_size=batch_size, device=device)
        image_of = image_of or (lambda item: item[0] if isinstance(item, (tuple, list)) else item)
        total = len(dataset) if hasattr(dataset, "__len__") else None
        batch: List[Tuple[int, Any]] = []

        def flush() -> None:
            pixels = [image_to_tensor(image_of(item)) for _, item in batch]
            if keys == "fingerprint":
                given = None
            elif keys == "path":
                given = explicit_keys([key_of(i, item) for i, item in batch], "path", len(batch))
            else:
                given = torch.tensor([key_of(i, item) if key_of else i for i, item in batch], dtype=torch.int64)
            table.fill(cropper, pixels, given)
            bar.update(len(batch))
            batch.clear()

        with tqdm(total=total, unit="image", desc="crop table", disable=not progress) as bar:
            for i, item in enumerate(dataset):
                batch.append((i, item))
                if len(batch) == batch_size:
                    flush()
            if batch:
                flush()
        table._consolidate()
        return table

    # -- files -------------------------------------------------------------------------------------
    def metadata(self) -> Dict[str, str]:
        return {"format": FORMAT, "keys": self.keys, "candidates": str(self.candidates),
                "ratios": json.dumps(list(self.ratios or ())), "model": self.model or "",
                "proposer": self.proposer or ""}

    def save(self, path: PathLike, *, extra: Optional[Dict[str, str]] = None) -> None:
        """Writes the table to ``path`` (one safetensors file) atomically; ``extra`` metadata (text) is kept
        beside the table's own and read back as :attr:`extra`."""
        from safetensors.torch import save_file

        if self.ratios is None:
            raise ValueError("an unbound crop table has nothing to save")
        self._consolidate()
        tensors = {"keys": self._keys.contiguous(), "sizes": self._sizes.contiguous(),
                   "boxes": self._boxes.contiguous(), "scores": self._scores.contiguous()}
        metadata = {**(extra or {}), **self.metadata()}
        write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))

    @staticmethod
    def is_table(path: PathLike) -> bool:
        """Whether ``path`` is a regular file that holds a crop table (read from its header only)."""
        from safetensors import SafetensorError, safe_open

        if not os.path.isfile(path):
            return False
        try:
            with safe_open(os.fspath(path), framework="pt") as f:
                return (f.metadata() or {}).get("format") == FORMAT
        except (SafetensorError, OSError, ValueError):
            return False

    @classmethod
    def load(cls, path: PathLike, *, lazy: bool = False) -> "CropTable":
        """A table written by :meth:`save` (memory-mapped; safetensors, no code). ``ValueError`` (one line)
        for a file that is not one; ``lazy`` as in the constructor (default off: a miss raises)."""
        from safetensors import SafetensorError, safe_open

        path = os.fspath(path)
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise ValueError(f"{path} is not a crop table (format {meta.get('format')!r}, expected {FORMAT!r})")
                tensors = {name: f.get_tensor(name) for name in ("keys", "sizes", "boxes", "scores")}
                ratios = json.loads(meta["ratios"])
                if not isinstance(ratios, list):
                    raise ValueError(f"ratios {meta['ratios']!r} is not a list")
                table = cls(meta["keys"], candidates=int(meta["candidates"]), lazy=lazy)
                table.bind(ratios, meta["model"], meta["proposer"])
                table.extra = {k: v for k, v in meta.items() if k not in table.metadata()}
        except (SafetensorError, OSError, KeyError, ValueError) as e:  # ValueError: JSON, the ratios, the count
            if isinstance(e, FileNotFoundError):
                raise FileNotFoundError(f"no such crop table: {path}") from None
            raise ValueError(f"{path} is not a readable crop table ({type(e).__name__}: {e})") from None
        why = _damage(tensors, len(table.ratios), table.candidates)
        if why:
            raise ValueError(f"{path} is a damaged crop table ({why})")
        table._keys, table._sizes = tensors["keys"], tensors["sizes"]
        table._boxes, table._scores = tensors["boxes"], tensors["scores"]
        return table


__all__ = ["CropTable", "TableMismatch", "TableMiss", "DEFAULT_CANDIDATES"]


def _key_tensor(keys: Any) -> Tensor:
    """Stored keys as given to :meth:`CropTable.lookup` and :meth:`CropTable.fill` (the int64 keys
    :func:`~s2c_ops.cropping.table_keys.explicit_keys` or fingerprints give): :func:`key_tensor`'s check."""
    if not isinstance(keys, Tensor):
        raise ValueError(f"keys must be a 1-D integer tensor, got {type(keys).__name__}")
    return key_tensor(keys)


def _damage(tensors: Dict[str, Tensor], r: int, k: int) -> Optional[str]:
    """What is wrong with a loaded table's arrays for ``r`` ratios and ``k`` candidates, or ``None``: shapes
    and kinds, keys sorted and unique (found by binary search), every scored candidate a box with x2 > x1
    and y2 > y1 inside its image, scores finite but the padding's -inf."""
    keys, sizes, boxes, scores = (tensors[name] for name in ("keys", "sizes", "boxes", "scores"))
    n = len(keys)
    if keys.shape != (n,) or sizes.shape != (n, 2) or boxes.shape != (n, r, k, 4) or scores.shape != (n, r, k):
        return "its arrays do not agree in shape"
    if keys.dtype != torch.int64 or sizes.is_floating_point() or not boxes.is_floating_point() \
            or not scores.is_floating_point():
        return "its arrays are not of the kinds it writes"
    if n > 1 and not bool((keys[1:] > keys[:-1]).all()):
        return "its keys are not sorted and unique"
    if n and int(sizes.min()) < 1:
        return "an image size under 1 pixel"
    scored = torch.isfinite(scores)
    if bool((~scored & (scores != -math.inf)).any()):
        return "a score that is NaN or +inf"
    b = boxes[scored]
    hw = sizes[:, None, None, :].expand(n, r, k, 2)[scored].to(b.dtype)
    slack = 0.5  # pixels: a box's float corners may pass its image's edge by rounding, never by a pixel
    inside = (b[:, 0] >= -slack) & (b[:, 1] >= -slack) & (b[:, 2] <= hw[:, 1] + slack) & (b[:, 3] <= hw[:, 0] + slack)
    if not bool((torch.isfinite(b).all(1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]) & inside).all()):
        return "a scored box that is not finite, empty, inverted or outside its image"
    return None


def _key_name(keys: Tensor, names: Optional[Sequence[Union[str, os.PathLike]]], i: int) -> str:
    """How an error names the ``i``-th key: the path the caller gave when known, else the stored int64."""
    return repr(os.fspath(names[i])) if names is not None else str(int(keys[i]))
