"""The face rule: what a crop's score loses for what it does to the faces in a photo, and the crops built
from the faces that let a crop keep every main face whole.

Faces are the detector's boxes (brows to chin). The rule protects each face's *core* (its box grown by
``core`` of its sides: labelled faces reach a little past the detector's) and its whole head
(:meth:`FaceRule.heads`: forehead, hair, ears, chin). Per crop, in order of weight:

1. a face cut (its core neither wholly inside nor wholly outside) costs ``cut_penalty``, more for a larger
   face (up to ``1 + cut_growth`` times it for the largest), so when every crop cuts something, the
   smallest faces are the ones cut;
   (a crop too small for a face's core is judged on the face's box);
2. a *main* face (height at least ``main_share`` of the largest face's) whose core is not wholly inside
   costs between half of ``left_out_penalty`` and all of it (all of it when every main face is out), more
   than the model's scores differ and less than any cut;
3. a head trimmed (its face whole, in or out, but the head's box cut: hair, ears) costs ``trim_penalty``,
   so a crop trims hair only to keep a main face that does not fit with its whole head;
4. a head not trimmed whose room (``clearance`` of its sides, within the photo) a crop edge crosses costs
   ``crowded_penalty``, at most half of ``left_out_penalty`` in all.

:meth:`FaceRule.candidates` adds crops of a ratio around the main heads (with room, scaled and shifted in a
few steps), so a crop that keeps every main face whole exists whenever the photo holds one; where none
does, around the group of main faces one crop holds with the largest sum of heights (:meth:`FaceRule.group`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..ops.boxes import grow_boxes, kept_share, sides
from .candidates import largest_crop, unique_boxes

#: The default rule's weights (as ``FaceRule()`` has them).
FACE_CUT_PENALTY = 100.0
FACE_LEFT_OUT_PENALTY = 10.0
FACE_CROWDED_PENALTY = 1.0
FACE_CLEARANCE = 0.15
FACE_CUT_MARGIN = 0.05


def _cut(kept: Tensor, margin: float) -> Tensor:
    """Which of a (K, F) matrix of kept shares are cuts: more than ``margin`` kept and less than ``1 - margin``."""
    return (kept > margin) & (kept < 1 - margin)


def faces_cut(crops: Tensor, faces: Tensor, margin: float = FACE_CUT_MARGIN) -> Tensor:
    """How many of ``faces`` (F, 4) each crop of ``crops`` (K, 4) cuts: keeps more than ``margin`` of
    the face's box but less than ``1 - margin`` (a face wholly inside or wholly outside is not cut)."""
    return _cut(kept_share(crops[:, None], faces[None]), margin).sum(1)


@dataclass(frozen=True)
class FaceRule:
    """The face rule the :class:`~s2c_ops.cropping.cropper.Cropper` applies (``Cropper(face_rule=None)``:
    none). See the module docstring for what each weight does."""

    cut_penalty: float = FACE_CUT_PENALTY
    #: A cut of the largest face costs ``cut_penalty * (1 + cut_growth)``, of a face of height ``s`` times
    #: the largest's ``cut_penalty * (1 + cut_growth * s)``.
    cut_growth: float = 2.0
    left_out_penalty: float = FACE_LEFT_OUT_PENALTY
    trim_penalty: float = 1.5
    crowded_penalty: float = FACE_CROWDED_PENALTY
    clearance: float = FACE_CLEARANCE
    #: A head or its room is cut when a crop keeps more than this share of its box and less than one minus it.
    cut_margin: float = FACE_CUT_MARGIN
    #: A face's core: its box grown by this share of its sides on each side; cut when a crop keeps more than
    #: ``core_margin`` of it and less than one minus that.
    core: float = 0.1
    core_margin: float = 0.01
    #: A face is a main face when its height is at least this share of the largest face's.
    main_share: float = 0.5
    #: A head box: the face's box grown on each side (left, top, right, bottom) by these shares of its width
    #: (left, right) or height (top, bottom).
    head: Tuple[float, float, float, float] = (0.3, 0.5, 0.3, 0.25)
    #: Whether :meth:`candidates` adds crops built from the faces (the Cropper asks it per ratio).
    face_candidates: bool = True
    #: The face crops' sizes, as steps from the tightest crop around the main heads (0) to the largest of
    #: the ratio (1), and their positions per axis, spread over the room the photo leaves.
    scale_steps: Tuple[float, ...] = (0.0, 0.2, 0.45, 0.75)
    shift_steps: int = 3

    def __post_init__(self) -> None:
        # Lists (a rule read back from JSON, e.g. ``s2c export``'s scorer.json) and numpy numbers are taken
        # as the tuples and numbers they hold.
        for name in ("head", "scale_steps"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not all(_real(v) for v in value):
                raise ValueError(f"FaceRule.{name} must be a tuple of numbers, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if len(self.head) != 4 or not self.scale_steps:
            raise ValueError(f"FaceRule needs 4 head shares (left, top, right, bottom) and one or more scale_steps, "
                             f"got head={self.head} and scale_steps={self.scale_steps}")
        values = (self.cut_penalty, self.cut_growth, self.left_out_penalty, self.trim_penalty, self.crowded_penalty,
                  self.clearance, self.cut_margin, self.core, self.core_margin, self.main_share)
        if not all(_real(v) for v in values) or not all(map(math.isfinite, values + self.head + self.scale_steps)):
            raise ValueError(f"FaceRule's weights must be finite numbers, got {self}")
        if not self.cut_penalty > 2 * self.left_out_penalty > 0 or self.crowded_penalty < 0 or self.cut_growth < 0:
            raise ValueError("FaceRule needs cut_penalty > 2 * left_out_penalty > 0, crowded_penalty >= 0 and "
                             "cut_growth >= 0 (a cut outweighs every other charge)")
        if not 0 <= self.cut_margin < 0.5 or not 0 <= self.core_margin < 0.5 or not 0 < self.main_share <= 1 \
                or min(self.trim_penalty, self.clearance, self.core, *self.head) < 0 \
                or not all(0 <= v <= 1 for v in self.scale_steps):
            raise ValueError("FaceRule needs 0 <= cut_margin, core_margin < 0.5, 0 < main_share <= 1, scale_steps "
                             "in [0, 1] and trim_penalty, clearance, core, head >= 0")
        if isinstance(self.shift_steps, bool) or not isinstance(self.shift_steps, numbers.Integral) \
                or self.shift_steps < 1:
            raise ValueError(f"FaceRule.shift_steps must be an int >= 1, got {self.shift_steps!r}")
        object.__setattr__(self, "shift_steps", int(self.shift_steps))

    def heads(self, faces: Tensor, height: float, width: float) -> Tensor:
        """Face boxes ``(F, 4)`` grown to the whole head (:attr:`head`), clamped to the image."""
        left, top, right, bottom = self.head
        return grow_boxes(faces, left, top, right, bottom, height, width)

    def main_faces(self, faces: Tensor) -> Tensor:
        """``(F,)`` bool: the faces at least :attr:`main_share` as tall as the largest."""
        h = sides(faces)[1]
        return h >= self.main_share * h.max()

    def cores(self, faces: Tensor, height: float, width: float) -> Tensor:
        """Face boxes ``(F, 4)`` grown by :attr:`core` on each side, clamped to the image."""
        c = self.core
        return grow_boxes(faces, c, c, c, c, height, width)

    def penalty(self, crops: Tensor, faces: Tensor, height: float, width: float) -> Tensor:
        """What each crop of ``crops`` (K, 4) loses for ``faces`` (F >= 1, 4, detector boxes) in a ``width`` x
        ``height`` image (all in one pixel space)."""
        return sum(self._charges(crops, faces, height, width))

    def _charges(self, crops: Tensor, faces: Tensor, height: float, width: float) -> Tuple[Tensor, ...]:
        """Each crop's charges for cuts, main faces left out, heads trimmed and heads crowded."""
        heads = self.heads(faces, height, width)
        c = self.clearance
        core = self._kept_cores(crops, faces, height, width)
        head = _cut(kept_share(crops[:, None], heads[None]), self.cut_margin)
        room = _cut(kept_share(crops[:, None], grow_boxes(heads, c, c, c, c, height, width)[None]), self.cut_margin)
        size = sides(faces)[1]
        size = size / size.max()
        cut = _cut(core, self.core_margin)
        cuts = self.cut_penalty * (cut.float() * (1 + self.cut_growth * size)).sum(1)
        trimmed = self.trim_penalty * (head & ~cut).sum(1).float()
        main = self.main_faces(faces).float() * size
        out = (core < 1 - self.core_margin).float() @ main / main.sum()
        left_out = torch.where(out > 0, self.left_out_penalty * (0.5 + 0.5 * out), torch.zeros_like(out))
        crowded = (self.crowded_penalty * (room & ~head).sum(1).float()).clamp(max=self.left_out_penalty / 2)
        return cuts, left_out, trimmed, crowded

    def _kept_cores(self, crops: Tensor, faces: Tensor, height: float, width: float) -> Tensor:
        """(K, F): the share of each face's core each crop keeps; of the face's own box where the crop is too
        small for the core (it keeps the face whole or not at all)."""
        cores = self.cores(faces, height, width)
        crop_w, crop_h = sides(crops[:, None])
        core_w, core_h = sides(cores[None])
        fits = (crop_w >= core_w) & (crop_h >= core_h)
        return torch.where(fits, kept_share(crops[:, None], cores[None]), kept_share(crops[:, None], faces[None]))

    def cuts(self, crops: Tensor, faces: Tensor, height: float, width: float) -> Tensor:
        """How many of ``faces`` each crop cuts (their cores: what :meth:`penalty` charges most for)."""
        return faces_cut(crops, self.cores(faces, height, width), self.core_margin)

    def candidates(self, faces: Tensor, height: int, width: int, ratio: float,
                   others: Optional[Tensor] = None) -> Tensor:
        """Crops of ``ratio`` (K, 4, float32) around the main faces' heads of ``faces`` (F, 4) with room
        around them (else the heads alone, else the faces' cores, else the faces): from the tightest towards
        the largest crop of the ratio in :attr:`scale_steps`, each at :attr:`shift_steps` positions per axis
        that keep them inside. Where no crop of the ratio holds every main face, the crops are built around
        the group of main faces one crop holds with the largest sum of heights (:meth:`group`: what the left-out
        charge asks for). None (0, 4) when there are no faces, when no crop holds even one main face's core,
        or when one of ``others`` (the ratio's other candidates) already cuts no face and keeps the faces the
        crops would be built around (added crops shift the model's decoding of the rest: only where needed).
        """
        empty = torch.zeros((0, 4))
        if not self.face_candidates or not len(faces):
            return empty
        faces = faces.float().cpu()
        main = faces[self.main_faces(faces)]
        span = self._span(main, height, width, ratio)
        if span is None:
            main = main[self.group(main, height, width, ratio)]
            span = self._span(main, height, width, ratio) if len(main) else None
            if span is None:
                return empty
        if others is not None and len(others):
            others = others.float().cpu()
            keeps = (self._kept_cores(others, main, height, width) >= 1 - self.core_margin).all(1)
            if (keeps & (self._charges(others, faces, height, width)[0] == 0)).any():
                return empty
        (x1, y1, x2, y2), tight = span
        big_h, big_w = largest_crop(height, width, ratio)
        out = []
        for step in self.scale_steps:
            w = tight + step * (big_w - tight)
            h = min(w / ratio, big_h)
            w = min(w, big_w)
            for x in _positions(x1, x2, w, width, self.shift_steps):
                for y in _positions(y1, y2, h, height, self.shift_steps):
                    out.append([x, y, x + w, y + h])
        return unique_boxes(torch.tensor(out, dtype=torch.float32))

    def group(self, faces: Tensor, height: int, width: int, ratio: float) -> Tensor:
        """``(F,)`` bool: the faces of ``faces`` (the main ones) whose cores the largest crop of ``ratio`` can
        hold together with the largest sum of heights (all False when it holds no face's core)."""
        cores = self.cores(faces, height, width)
        big_h, big_w = largest_crop(height, width, ratio)
        # A set of faces one crop holds is held by the crop whose left and top edges are the set's own.
        x = cores[:, 0].clamp(max=width - big_w)
        y = cores[:, 1].clamp(max=height - big_h)
        x, y = torch.meshgrid(x, y, indexing="ij")
        windows = torch.stack([x, y, x + big_w, y + big_h], -1).reshape(-1, 4)
        eps = 1e-3
        held = ((cores[None, :, :2] >= windows[:, None, :2] - eps)
                & (cores[None, :, 2:] <= windows[:, None, 2:] + eps)).all(-1)
        value = held.float() @ sides(faces)[1]
        return held[value.argmax()]

    def _span(self, faces: Tensor, height: int, width: int, ratio: float
              ) -> Optional[Tuple[Tuple[float, float, float, float], float]]:
        """The union of ``faces``' heads with room (else heads, cores, faces: the first a crop of ``ratio`` can
        hold) and the width of the tightest crop of ``ratio`` around it; ``None`` when none fits."""
        heads, c = self.heads(faces, height, width), self.clearance
        big_w = largest_crop(height, width, ratio)[1]
        for boxes in (grow_boxes(heads, c, c, c, c, height, width), heads, self.cores(faces, height, width), faces):
            x1, y1 = boxes[:, :2].min(0).values.tolist()
            x2, y2 = boxes[:, 2:].max(0).values.tolist()
            tight = max(x2 - x1, (y2 - y1) * ratio)
            if tight <= big_w + 1e-3:
                return (x1, y1, x2, y2), tight
        return None


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positions(low: float, high: float, size: float, limit: int, steps: int):
    """``steps`` starts of a span of ``size`` within ``[0, limit]`` that hold ``[low, high]``, spread from the
    span's far side to its near side (one, centred on it, when ``steps`` is 1)."""
    first = max(0.0, min(high - size, limit - size))
    last = min(max(0.0, low), limit - size)
    if steps == 1 or last <= first:
        return [min(max((low + high - size) / 2, first), last) if last >= first else first]
    return [first + (last - first) * i / (steps - 1) for i in range(steps)]
