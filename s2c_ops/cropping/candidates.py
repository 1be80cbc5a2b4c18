"""Candidate crops for S2CNet: the official GAIC grid, and crops of any one aspect ratio.

All boxes are ``float32`` tensors of shape ``(N, 4)`` with rows ``(x1, y1, x2, y2)`` in continuous
pixel coordinates: the image covers ``[0, width] x [0, height]`` and a box's size is ``(x2 - x1,
y2 - y1)`` (so ``x2``/``y2`` behave as exclusive bounds when rounded to whole pixels).

``grid_anchors(height, width)`` -- the official GAIC / S2CNet candidates, same values, same order:
    the image is cut into 12 x 12 bins; box corners sit at bin centres, ``coordinate = step * (0.5 +
    bin)`` with ``step = size / 12``; the top/left corner's bins are 0..3 and the bottom/right
    corner's bins are 8..11; a box is kept when it covers at least half the image in bins (official
    test ``bins_w * bins_h > 0.4999 * 144``) and its pixel aspect ratio ``w / h`` is strictly between
    0.5 and 2. The order is y1 (outermost), x1, y2, x2 (innermost). About 80-90 boxes for usual photos
    (83 for 256 x 384, 90 for 320 x 256).

``ratio_anchors(height, width, ratio)`` -- crops with exactly one aspect ratio ``ratio = w / h``:
    * The *largest box* of that ratio that fits is ``W0 = min(width, height * ratio)``,
      ``H0 = W0 / ratio``. It is always returned, first, centred.
    * Scales: ``num_scales`` box areas evenly spaced from ``W0 * H0`` down to ``min_area * W0 * H0``
      (``min_area`` is a fraction of the largest box of that ratio, not of the image; 0.5 by
      default, like GAIC's "half the image" when the ratio is the image's own).
    * Positions: along each axis with slack ``s = size - box_size``, the box is centred when
      ``s < step`` (``step = size / grid``), else it takes an odd number ``n = 1 + 2 * ceil(s / (2 *
      step))`` of evenly spaced positions from flush-left to flush-right (so the centred position is
      always among them and the spacing is at most one step).
    * Coordinates are exact floats: every box has ``(x2 - x1) / (y2 - y1) == ratio`` up to float32
      rounding, and lies inside ``[0, width] x [0, height]``. Rounded to whole pixels a box's ratio
      is off by at most one pixel on a side.
    * Boxes narrower or shorter than ``min_size`` pixels are dropped. If even the largest box has a
      side under ``min_size`` the image cannot hold the ratio and a ``ValueError`` is raised.
    * Deduplicated: no two boxes are equal once rounded to whole pixels (the first one is kept).
    * Order: scale by scale from the largest, then row by row (y1, then x1). If more than
      ``max_count`` boxes remain they are thinned evenly by index (deterministically, keeping the
      first box -- the centred largest one).

``pixel_crops(boxes, ratio, height, width)`` -- the whole-pixel crops of such boxes that keep the ratio
    within half a pixel (what ``s2c crop`` writes and ``AestheticCrop`` cuts).

``candidate_crops(height, width, ratio)`` -- the candidates the Cropper scores for ``ratio``: ``ratio_anchors``,
    or ``grid_anchors`` for :data:`FREE` (the best crop of any shape, as FCDB's free-form protocol scores it).

``parse_ratio(text)`` turns ``"16:9"``, ``"4/3"``, ``"1.5"`` or ``1.5`` into a positive finite float
(``free=True``: ``"free"`` into :data:`FREE`).
"""
from __future__ import annotations

import math
import numbers
from typing import Tuple, Union

import torch
from torch import Tensor

__all__ = ["FREE", "Ratio", "candidate_crops", "grid_anchors", "largest_crop", "parse_ratio", "pixel_crops",
           "ratio_anchors"]

#: The ratio that asks for the best crop of any shape (the official grid's aspect ratios, 1:2 to 2:1).
FREE = "free"
#: A parsed ratio: width / height, or :data:`FREE`.
Ratio = Union[float, str]

_BINS = 12


def largest_crop(height: float, width: float, ratio: float) -> Tuple[float, float]:
    """``(h, w)`` of the largest crop of ``ratio`` (width / height) that fits a ``height`` x ``width`` image,
    in exact (not whole) pixels."""
    w = min(float(width), height * ratio)
    return min(float(height), w / ratio), w


#: The least side, in pixels, of a crop of a ratio (``ratio_anchors``' ``min_size``), and of a photo given
#: a free-form crop.
MIN_CROP_SIDE = 16.0


def _check_size(height: int, width: int) -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
        if value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(height), int(width)


def grid_anchors(height: int, width: int) -> Tensor:
    """The official GAIC / S2CNet 12 x 12 grid candidates for a ``height`` x ``width`` image.

    Returns a float32 ``(N, 4)`` tensor of ``(x1, y1, x2, y2)`` pixel boxes, equal (values and order)
    to the official generator's; see the module docstring for the rule.
    """
    height, width = _check_size(height, width)
    # Official arithmetic is Python floats (double), cast to float32 at the end.
    step_h = torch.tensor(height / _BINS, dtype=torch.float64)
    step_w = torch.tensor(width / _BINS, dtype=torch.float64)
    near = torch.arange(0, 4, dtype=torch.float64)
    far = torch.arange(_BINS - 4, _BINS, dtype=torch.float64)
    # Official nesting: y1 (outermost), x1, y2, x2 (innermost).
    y1, x1, y2, x2 = (t.reshape(-1) for t in torch.meshgrid(near, near, far, far, indexing="ij"))
    bw, bh = x2 - x1, y2 - y1
    aspect = bw * step_w / bh / step_h  # same operation order as the official test
    keep = (bw * bh > 0.4999 * _BINS * _BINS) & (aspect > 0.5) & (aspect < 2.0)
    boxes = torch.stack(
        [step_w * (0.5 + x1), step_h * (0.5 + y1), step_w * (0.5 + x2), step_h * (0.5 + y2)], dim=1
    )
    return boxes[keep].to(torch.float32)


def parse_ratio(text: Union[str, float], *, free: bool = False) -> Ratio:
    """Parses an aspect ratio ``w / h``: ``"16:9"``, ``"4/3"``, ``"1.5"``, or a number; with ``free=True``,
    ``"free"`` (any case) gives :data:`FREE`.

    Raises ``ValueError`` naming the value unless it is a positive finite number.
    """
    if free and isinstance(text, str) and text.strip().lower() == FREE:
        return FREE
    expected = "'W:H', 'W/H', a number or 'free'" if free else "'W:H', 'W/H' or a number"
    if isinstance(text, bool):
        raise ValueError(f"invalid aspect ratio {text!r}: expected {expected}")
    if isinstance(text, numbers.Real):
        value = float(text)
    elif isinstance(text, str):
        s = text.strip()
        sep = ":" if ":" in s else "/" if "/" in s else None
        try:
            if "_" in s:  # float() reads "1_1" as 11: a typo of 1:1 would crop at 11:1
                raise ValueError
            if sep is None:
                value = float(s)
            else:
                num, den = s.split(sep, 1)
                a, b = float(num), float(den)
                if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
                    raise ValueError
                value = a / b
        except ValueError:
            raise ValueError(
                f"invalid aspect ratio {text!r}: expected {expected}, all positive and finite"
            ) from None
    else:
        raise ValueError(f"invalid aspect ratio {text!r}: expected a str or a number, got {type(text).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"invalid aspect ratio {text!r}: must be positive and finite")
    return value


def candidate_crops(height: int, width: int, ratio: Ratio) -> Tensor:
    """The candidates scored for ``ratio`` (parsed): :func:`ratio_anchors`, or for :data:`FREE` the official
    grid (:func:`grid_anchors`). ``ValueError`` when the image cannot hold one (its message names why)."""
    if ratio != FREE:
        return ratio_anchors(height, width, ratio)
    if min(height, width) < MIN_CROP_SIDE:
        raise ValueError(f"a {height}x{width} (height x width) image is too small for a free-form crop: it needs "
                         f"at least {MIN_CROP_SIDE:g} px on each side")
    boxes = grid_anchors(height, width)
    if not len(boxes):
        raise ValueError(f"a {height}x{width} (height x width) image has no free-form candidate (the official grid "
                         "keeps crops with aspect ratios from 1:2 to 2:1 covering half the image)")
    return boxes


def ratio_anchors(
    height: int,
    width: int,
    ratio: float,
    *,
    min_area: float = 0.5,
    num_scales: int = 6,
    grid: int = 12,
    min_size: float = MIN_CROP_SIDE,
    max_count: int = 200,
) -> Tensor:
    """Candidate crops of aspect ratio ``ratio`` (= crop width / crop height) for a ``height`` x
    ``width`` image; see the module docstring for the rules.

    Args:
        min_area: smallest box area, as a fraction in (0, 1] of the largest box of that ratio.
        num_scales: number of box sizes, areas evenly spaced from the largest down to ``min_area``.
        grid: position step along each axis is ``size / grid`` pixels (the image's size on that axis).
        min_size: boxes must be at least this many pixels wide and high.
        max_count: at most this many boxes are returned (thinned evenly by index).

    Returns a float32 ``(N, 4)`` tensor of ``(x1, y1, x2, y2)`` boxes, the centred largest one first.
    Raises ``ValueError`` for bad arguments or when the largest box has a side under ``min_size``.
    """
    height, width = _check_size(height, width)
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive finite number (width / height), got {ratio!r}")
    if not (isinstance(min_area, numbers.Real) and 0 < min_area <= 1):
        raise ValueError(f"min_area must be in (0, 1], got {min_area!r}")
    for name, value in (("num_scales", num_scales), ("grid", grid), ("max_count", max_count)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not (isinstance(min_size, numbers.Real) and math.isfinite(min_size) and min_size > 0):
        raise ValueError(f"min_size must be a positive number of pixels, got {min_size!r}")

    ratio = float(ratio)
    h0, w0 = largest_crop(height, width, ratio)
    if w0 < min_size or h0 < min_size:
        raise ValueError(
            f"a {height}x{width} (height x width) image cannot hold a crop of ratio {ratio:g} with both sides "
            f">= {min_size:g} px (the largest would be {w0:.1f}x{h0:.1f} px, width x height)"
        )

    f64 = torch.float64
    area = torch.linspace(1.0, float(min_area), num_scales, dtype=f64) if num_scales > 1 else torch.ones(1, dtype=f64)
    side = area.sqrt()
    bw, bh = side * w0, side * h0  # (S,)
    bw[0], bh[0] = w0, h0  # exact largest box
    ok = (bw >= min_size) & (bh >= min_size)
    bw, bh = bw[ok], bh[ok]

    def positions(size: int, box: Tensor) -> tuple[Tensor, Tensor]:
        slack = (size - box).clamp_min(0.0)
        step = size / grid
        n = torch.where(slack < step, torch.ones_like(slack), 1 + 2 * torch.ceil(slack / (2 * step)))
        return slack, n.long()

    slack_x, nx = positions(width, bw)
    slack_y, ny = positions(height, bh)
    # Padded (S, NY, NX) grid of position indices, masked to each scale's own counts.
    iy = torch.arange(int(ny.max()), dtype=f64)[None, :, None]
    ix = torch.arange(int(nx.max()), dtype=f64)[None, None, :]
    mask = (iy < ny[:, None, None]) & (ix < nx[:, None, None])

    def place(index: Tensor, slack: Tensor, n: Tensor) -> Tensor:
        n = n[:, None, None]
        frac = torch.where(n > 1, index / (n - 1).clamp_min(1).to(f64), torch.full_like(index, 0.5))
        return frac * slack[:, None, None]

    x1 = place(ix.expand(mask.shape), slack_x, nx)
    y1 = place(iy.expand(mask.shape), slack_y, ny)
    x2 = (x1 + bw[:, None, None]).clamp_max(float(width))
    y2 = (y1 + bh[:, None, None]).clamp_max(float(height))
    boxes = torch.stack([x1, y1, x2, y2], dim=-1)[mask]  # scale-major, then y1, then x1

    # The centred largest box first (scale 0 is the largest; its centre is always one of its positions).
    cx, cy = (width - w0) / 2, (height - h0) / 2
    centre = torch.tensor([[cx, cy, cx + w0, cy + h0]], dtype=f64)
    boxes = torch.cat([centre, boxes], dim=0)

    boxes = unique_boxes(boxes)

    if boxes.shape[0] > max_count:
        keep = torch.linspace(0, boxes.shape[0] - 1, max_count, dtype=f64).round().long()
        boxes = boxes[keep]
    return boxes.to(torch.float32)


def unique_boxes(boxes: Tensor) -> Tensor:
    """``boxes`` (N >= 1, 4) without repeats on whole-pixel coordinates, first occurrences kept, in order."""
    _, inverse = torch.unique(boxes.round().long(), dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), boxes.shape[0], dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(boxes.shape[0]), reduce="amin")
    return boxes[first.sort().values]


def pixel_crops(boxes: Tensor, ratio: Ratio, height: int, width: int) -> Tensor:
    """Whole-pixel crops ``(x0, y0, w, h)`` (long, (B, 4)) for continuous ``(x1, y1, x2, y2)`` boxes of
    aspect ratio ``ratio`` inside a ``height`` x ``width`` image.

    The shorter side is the box's, rounded; the longer one is the shorter times (or divided by) the ratio,
    rounded, so it is within half a pixel of the exact ratio; the crop is centred on the box and kept
    inside the image (its sides never exceed it). For :data:`FREE` each box's own corners are rounded."""
    b = boxes.to(torch.float64)
    if ratio == FREE:
        x1, y1 = b[:, 0].round().clamp(0, width - 1), b[:, 1].round().clamp(0, height - 1)
        x2, y2 = torch.maximum(b[:, 2].round().clamp(max=width), x1 + 1), torch.maximum(b[:, 3].round().clamp(max=height), y1 + 1)
        return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=1).long()
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]

    def sides(short: Tensor, factor: float, short_max: int, long_max: int) -> Tuple[Tensor, Tensor]:
        s = short.round().clamp(1, short_max)
        l = (s * factor).round()
        # A box inside the image has short * factor <= long_max; rounding the short side up can push the
        # long one past it by at most factor / 2 >= 1/2, which one pixel less on the short side undoes.
        over = l > long_max
        s = torch.where(over, (s - 1).clamp_min(1), s)
        l = torch.where(over, (s * factor).round(), l).clamp(1, long_max)
        return s, l

    if ratio >= 1:
        h, w = sides(bh, ratio, height, width)
    else:
        w, h = sides(bw, 1 / ratio, width, height)
    x0 = ((b[:, 0] + b[:, 2] - w) / 2).round()
    y0 = ((b[:, 1] + b[:, 3] - h) / 2).round()
    x0 = torch.minimum(x0.clamp_min(0), width - w)
    y0 = torch.minimum(y0.clamp_min(0), height - h)
    return torch.stack([x0, y0, w, h], dim=1).long()
