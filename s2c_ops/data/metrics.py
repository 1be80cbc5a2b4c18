"""Cropping quality metrics: GAICD ranking metrics and FCDB/FLMS best-crop metrics.

Per image (GAICD style), with ground-truth mean opinion scores ``g`` and model predictions ``p``
over that image's annotated crops (1-D tensors, arrays or sequences of equal length >= 2, finite):

``srcc(p, g)``, ``pcc(p, g)``
    Spearman rank / Pearson linear correlation (``scipy.stats.spearmanr`` / ``pearsonr``; Spearman
    uses average ranks for ties). When either input is constant the correlation is undefined;
    these functions then return ``0.0`` (no NaN, no warning) -- "no linear/monotone relation".

``acc_k(p, g, k, n)`` -- Acc_K/N of GAIC (Zeng et al.)
    Take the ``k`` crops with the highest predictions; the result is the fraction of them whose MOS
    is ``>=`` the ``n``-th best MOS of the image. A crop tied with the ``n``-th best MOS counts as a
    hit. Returned as a fraction in ``[0, 1]``.

``wacc(p, g, k, n, ties="hit")`` -- the rank-weighted wAcc_K/N of GAIC
    Source: H. Zeng, L. Li, Z. Cao, L. Zhang, "Grid Anchor based Image Cropping: A New Benchmark and
    An Efficient Model", IEEE TPAMI 2020 (arXiv:1909.08989), which weights each hit of Acc_K/N by
    how far the returned crop's ground-truth rank is from its ideal place,
    ``w = exp(-beta * (r - j) / N)`` with ``beta = 1``; the constants and the exact bookkeeping
    follow the authors' evaluation script (``TestAccuracy.py`` of
    github.com/HuiZeng/Grid-Anchor-based-Image-Cropping-Pytorch: ``exp(-0.2 (r - j))`` for N = 5,
    ``exp(-0.1 (r - j))`` for N = 10). Precisely:

    1. ``r_i`` is crop ``i``'s 0-based ground-truth rank (0 = best MOS).
    2. Take the ranks of the ``k`` crops with the highest predictions and sort them ascending:
       ``r_(0) <= ... <= r_(k-1)``.
    3. ``wAcc = (1 / k) * sum_j [r_(j) < n] * exp(-max(r_(j) - j, 0) / n)``.

    ``ties`` says how MOS ties give ranks:

    * ``"hit"`` (default): ``r_i`` = number of crops with a strictly higher MOS (competition
      ranking). Then ``r_i < n`` exactly when crop ``i``'s MOS is ``>=`` the ``n``-th best MOS, so
      the hits are exactly those of :func:`acc_k` (ties count as hits), and ``wacc <= acc``.
      Tied crops may share a rank, so ``r_(j) - j`` can be negative; it is clamped to 0 (a crop
      cannot do better than weight 1).
    * ``"index"``: ordinal ranks, MOS ties broken by crop index (lower index ranks better), as the
      authors' script does with Python's stable sort. Reproduces that script exactly (it differs
      from ``"hit"`` only when MOS values tie).

    Without MOS ties the two rules agree, and both equal the authors' script. Returned as a fraction.

Prediction ties (``acc_k``, ``wacc``): the top-k crops are taken in a stable order by
decreasing prediction, so among equal predictions the crop with the lower index comes first (the
authors' script behaves the same way).

Argument rules: ``k`` and ``n`` are integers with ``1 <= k <= len(p)`` and ``1 <= n <= len(p)``;
``n`` larger than the number of crops raises ``ValueError`` (there is no n-th best crop) rather than
being clipped. Mismatched lengths, fewer than 2 crops, NaN or infinite values, non-1-D input and
non-numeric input raise ``ValueError``.

Best-crop benchmarks (FCDB / FLMS), boxes ``(x1, y1, x2, y2)`` in pixels, shape ``(4,)`` or
``(N, 4)`` (broadcast against each other, pairs taken row by row):

``iou(box_a, box_b)`` -- intersection over union. Two zero-area boxes give 0.
``bde(box_pred, box_gt, *, height, width)`` -- boundary displacement error: the mean of
    ``|x1 - x1'| / W``, ``|x2 - x2'| / W``, ``|y1 - y1'| / H``, ``|y2 - y2'| / H``.
    ``height``/``width`` (keywords) are scalars or one value per box.

Both return a Python ``float`` when both boxes are single ``(4,)`` boxes, else a ``float64``
``numpy.ndarray`` of shape ``(N,)``. Boxes must be finite with ``x2 >= x1`` and ``y2 >= y1``.

Accumulating a test set: :class:`GAICMetrics`. ``update(image_id, scores, mos)`` per image,
``compute()`` gives the averages over images: correlations as plain numbers, accuracies in percent
(0-100) like the paper tables. ``records()`` keeps every image's scores and MOS for a JSON dump.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List

import numpy as np
import torch

__all__ = [
    "GAICMetrics",
    "acc_k",
    "bde",
    "iou",
    "pcc",
    "srcc",
    "wacc",
]

_WACC_TIES = ("hit", "index")


# ----------------------------------------------------------------------------------------------
# input handling


def _as_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 numpy array (tensors are detached and copied to the CPU)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} must be real numbers, got a complex tensor")
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        raw = np.asarray(x)
    except Exception as exc:  # ragged nested sequences and the like
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from exc
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    return raw.astype(np.float64, copy=False)


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        what = "NaN" if np.isnan(a).any() else "infinite values"
        raise ValueError(f"{name} contains {what}")


def _vector(x: Any, name: str) -> np.ndarray:
    a = _as_array(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per crop), got shape {tuple(a.shape)}")
    _check_finite(a, name)
    return a


def _pair(p: Any, g: Any):
    """Validated (predictions, MOS) as float64 vectors of one length >= 2."""
    p = _vector(p, "predictions")
    g = _vector(g, "mos")
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"predictions and mos differ in length: {p.shape[0]} vs {g.shape[0]}")
    if p.shape[0] < 2:
        raise ValueError(f"need at least 2 crops per image, got {p.shape[0]}")
    return p, g


def _count(value: Any, name: str, num_crops: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if value > num_crops:
        raise ValueError(f"{name}={value} exceeds the number of crops ({num_crops})")
    return value


def _top_k(p: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest predictions; equal predictions keep index order (stable)."""
    return np.argsort(-p, kind="stable")[:k]


# ----------------------------------------------------------------------------------------------
# per-image ranking metrics


def _is_constant(a: np.ndarray) -> bool:
    return bool(np.all(a == a[0]))


def _correlation(name: str, p: Any, g: Any) -> float:
    import scipy.stats

    p, g = _pair(p, g)
    if _is_constant(p) or _is_constant(g):
        return 0.0
    return float(getattr(scipy.stats, name)(p, g).statistic)


def srcc(p: Any, g: Any) -> float:
    """Spearman rank correlation between predictions ``p`` and MOS ``g`` of one image.

    Returns 0.0 when either input is constant (the correlation is undefined there).
    """
    return _correlation("spearmanr", p, g)


def pcc(p: Any, g: Any) -> float:
    """Pearson correlation between predictions ``p`` and MOS ``g`` of one image.

    Returns 0.0 when either input is constant (the correlation is undefined there).
    """
    return _correlation("pearsonr", p, g)


def _acc(p: np.ndarray, g: np.ndarray, k: int, n: int) -> float:
    top = _top_k(p, k)
    nth_best = np.sort(g)[::-1][n - 1]
    return float(np.count_nonzero(g[top] >= nth_best)) / k


def _gt_ranks(g: np.ndarray, ties: str) -> np.ndarray:
    """0-based ground-truth ranks (0 = best MOS)."""
    if ties == "hit":
        ascending = np.sort(g)
        return g.shape[0] - np.searchsorted(ascending, g, side="right")  # crops strictly better
    order = np.argsort(-g, kind="stable")
    ranks = np.empty(g.shape[0], dtype=np.int64)
    ranks[order] = np.arange(g.shape[0])
    return ranks


def _wacc(p: np.ndarray, g: np.ndarray, k: int, n: int, ties: str) -> float:
    ranks = np.sort(_gt_ranks(g, ties)[_top_k(p, k)])
    shift = np.maximum(ranks - np.arange(k), 0)
    weights = np.exp(-shift / n) * (ranks < n)
    return float(weights.sum()) / k


def _check_ties(ties: str) -> str:
    if ties not in _WACC_TIES:
        raise ValueError(f"ties must be one of {_WACC_TIES}, got {ties!r}")
    return ties


def acc_k(p: Any, g: Any, k: int, n: int) -> float:
    """GAIC's Acc_K/N for one image, as a fraction in [0, 1].

    Among the ``k`` crops with the highest predictions (equal predictions: lower index first), the
    fraction whose MOS is ``>=`` the ``n``-th best MOS of the image; ties with it count as hits.
    Raises ``ValueError`` unless ``1 <= k, n <= len(p)``.
    """
    p, g = _pair(p, g)
    k = _count(k, "k", p.shape[0])
    n = _count(n, "n", p.shape[0])
    return _acc(p, g, k, n)


def wacc(p: Any, g: Any, k: int, n: int, ties: str = "hit") -> float:
    """GAIC's rank-weighted wAcc_K/N for one image, as a fraction in [0, 1].

    ``(1/k) * sum_j [r_(j) < n] * exp(-max(r_(j) - j, 0) / n)`` over the ascending ground-truth
    ranks ``r_(j)`` (0-based) of the ``k`` top-predicted crops; see the module docstring for the
    source (Zeng et al., TPAMI 2020, and the authors' ``TestAccuracy.py``) and for ``ties``
    (``"hit"``: competition ranks, MOS ties with the n-th best count as hits like
    :func:`acc_k`; ``"index"``: ordinal ranks with MOS ties broken by index, the authors' script).
    """
    ties = _check_ties(ties)
    p, g = _pair(p, g)
    k = _count(k, "k", p.shape[0])
    n = _count(n, "n", p.shape[0])
    return _wacc(p, g, k, n, ties)


# ----------------------------------------------------------------------------------------------
# best-crop metrics (FCDB / FLMS)


def _boxes(x: Any, name: str) -> np.ndarray:
    a = _as_array(x, name)
    if a.ndim not in (1, 2) or a.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (4,) or (N, 4) with rows (x1, y1, x2, y2), got {tuple(a.shape)}")
    _check_finite(a, name)
    if np.any(a[..., 2] < a[..., 0]) or np.any(a[..., 3] < a[..., 1]):
        raise ValueError(f"{name} has a box with x2 < x1 or y2 < y1")
    return a


def _broadcast(a: np.ndarray, b: np.ndarray, names: str):
    try:
        return np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"{names} cannot be paired: shapes {tuple(a.shape)} and {tuple(b.shape)}") from None


def _result(values: np.ndarray, single: bool):
    return float(values) if single else values


def iou(box_a: Any, box_b: Any):
    """Intersection over union of boxes ``(x1, y1, x2, y2)``, row by row.

    ``box_a``/``box_b``: ``(4,)`` or ``(N, 4)`` (a single box is paired with every row). Returns a
    ``float`` for two single boxes, else a float64 array ``(N,)``. Two zero-area boxes give 0.
    """
    a = _boxes(box_a, "box_a")
    b = _boxes(box_b, "box_b")
    single = a.ndim == 1 and b.ndim == 1
    a, b = _broadcast(a, b, "box_a and box_b")
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    out = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return _result(out, single)


def bde(box_pred: Any, box_gt: Any, *, height: Any, width: Any):
    """Boundary displacement error between predicted and ground-truth boxes, row by row.

    Mean of the four boundary offsets, horizontal ones divided by the image ``width`` and vertical
    ones by ``height``: ``(|dx1| / W + |dx2| / W + |dy1| / H + |dy2| / H) / 4``. ``height``/``width``
    are positive scalars or one value per box, by keyword (the (height, width) order of the rest of the
    package; an earlier release took them positionally as width, height). Returns a ``float`` for two
    single boxes with scalar sizes, else a float64 array ``(N,)``.
    """
    a = _boxes(box_pred, "box_pred")
    b = _boxes(box_gt, "box_gt")
    w = _as_array(width, "width")
    h = _as_array(height, "height")
    for value, name in ((w, "width"), (h, "height")):
        if value.ndim > 1:
            raise ValueError(f"{name} must be a scalar or one value per box, got shape {tuple(value.shape)}")
        _check_finite(value, name)
        if np.any(value <= 0):
            raise ValueError(f"{name} must be > 0")
    single = a.ndim == 1 and b.ndim == 1 and w.ndim == 0 and h.ndim == 0
    a, b = _broadcast(a, b, "box_pred and box_gt")
    d = np.abs(a - b)
    try:
        horizontal = (d[..., 0] + d[..., 2]) / w
        vertical = (d[..., 1] + d[..., 3]) / h
    except ValueError:
        raise ValueError(
            f"width/height (shapes {tuple(w.shape)}, {tuple(h.shape)}) do not match {d.shape[:-1] or 'one'} box(es)"
        ) from None
    out = (horizontal + vertical) / 4.0
    if not single and out.ndim == 0:
        out = out.reshape(1)
    return _result(out, single)


# ----------------------------------------------------------------------------------------------
# accumulator


class GAICMetrics:
    """Accumulates GAICD metrics over a test set, one image at a time.

    ``update(image_id, scores, mos)`` computes the image's metrics (the image needs at least 10
    crops, since Acc_K/10 needs a 10th best crop) and keeps its scores and MOS. ``compute()``
    returns the means over images::

        srcc, pcc                       correlations (plain numbers, -1..1)
        acc{k}_{n}, wacc{k}_{n}         k = 1..4, n = 5, 10, in percent (0-100)
        acc5, acc10, wacc5, wacc10      mean over k = 1..4 of the above, in percent
        images                          number of images

    ``wacc_ties`` is passed to :func:`wacc` (``"hit"`` default, ``"index"`` = the authors'
    script). ``image_id`` is stored as ``str(image_id)`` (JSON keys); a repeated id raises
    ``ValueError``, and a rejected image leaves the accumulator unchanged.
    """

    K_VALUES = (1, 2, 3, 4)
    N_VALUES = (5, 10)

    def __init__(self, wacc_ties: str = "hit") -> None:
        self.wacc_ties = _check_ties(wacc_ties)
        self.reset()

    @classmethod
    def metric_names(cls) -> List[str]:
        """The keys of :meth:`compute`, in order."""
        names = ["srcc", "pcc"]
        for prefix in ("acc", "wacc"):
            names += [f"{prefix}{k}_{n}" for n in cls.N_VALUES for k in cls.K_VALUES]
        names += [f"{prefix}{n}" for prefix in ("acc", "wacc") for n in cls.N_VALUES]
        return names + ["images"]

    def reset(self) -> None:
        self._records: Dict[str, Dict[str, List[float]]] = {}
        self._per_image: Dict[str, Dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def update(self, image_id: Any, scores: Any, mos: Any) -> Dict[str, float]:
        """Adds one image; returns its metrics (same units as :meth:`compute`, no averages)."""
        key = str(image_id)
        if key in self._records:
            raise ValueError(f"image {key!r} was already added")
        p, g = _pair(scores, mos)
        need = max(self.N_VALUES)
        if p.shape[0] < need:
            raise ValueError(f"image {key!r} has {p.shape[0]} crops; Acc_K/{need} needs at least {need}")
        values = {"srcc": srcc(p, g), "pcc": pcc(p, g)}
        for n in self.N_VALUES:
            for k in self.K_VALUES:
                values[f"acc{k}_{n}"] = 100.0 * _acc(p, g, k, n)
                values[f"wacc{k}_{n}"] = 100.0 * _wacc(p, g, k, n, self.wacc_ties)
        self._records[key] = {"scores": p.tolist(), "mos": g.tolist()}
        self._per_image[key] = values
        return dict(values)

    def compute(self) -> Dict[str, float]:
        """Means over the images added so far (see the class docstring for keys and units)."""
        if not self._per_image:
            raise ValueError("no images were added")
        per_image = list(self._per_image.values())
        out: Dict[str, float] = {}
        for name in per_image[0]:
            out[name] = math.fsum(v[name] for v in per_image) / len(per_image)
        for prefix in ("acc", "wacc"):
            for n in self.N_VALUES:
                out[f"{prefix}{n}"] = math.fsum(out[f"{prefix}{k}_{n}"] for k in self.K_VALUES) / len(self.K_VALUES)
        out["images"] = len(per_image)
        return {name: out[name] for name in self.metric_names()}

    def records(self) -> Dict[str, Dict[str, List[float]]]:
        """``{"<id>": {"scores": [...], "mos": [...]}}`` for every image, in the order added."""
        return {key: {"scores": list(r["scores"]), "mos": list(r["mos"])} for key, r in self._records.items()}

    def per_image(self) -> Dict[str, Dict[str, float]]:
        """Every image's own metrics (same keys and units as :meth:`update` returns)."""
        return {key: dict(v) for key, v in self._per_image.items()}

    def to_dict(self) -> Dict[str, Any]:
        """``{"metrics": compute(), "images": records()}`` -- the ``s2c eval --json`` layout."""
        return {"metrics": self.compute(), "images": self.records()}
