"""Greedy non-maximum suppression on fixed-size tensors: each row of a batch on its own, no host
synchronisation on a GPU."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor


def greedy_nms(boxes: Tensor, valid: Tensor, threshold: float, max_kept: int, overlap: str = "iou", *,
               host_reads: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
    """The first ``max_kept`` boxes greedy NMS keeps in each row of ``boxes`` ``[B, P, 4]`` (``(x1, y1, x2,
    y2)``, ranked best first; ``valid`` ``[B, P]`` marks the real ones).

    A box is kept when no box kept before it overlaps it by an IoU above ``threshold``: per row, the
    same boxes in the same order as ``torchvision.ops.nms`` on the row's valid boxes with decreasing
    scores, with its float32 arithmetic. Returns ``index`` ``[B, max_kept]`` (int64, into ``P``) and
    ``found`` ``[B, max_kept]`` (bool: False past the last kept box, where ``index`` means nothing).

    ``overlap="min"`` measures overlap as the intersection over the smaller box's area instead of the IoU
    (a box inside a kept one is then dropped too).

    ``host_reads`` (default: on the CPU only, where reading values costs nothing): IoU suppression is
    ``torchvision.ops.nms`` itself, row by row, and the steps below stop once no row has a box left.
    Otherwise one step per kept box, each over the whole row, all ``max_kept`` of them: the host never
    waits. Both give the same result.
    """
    if overlap not in ("iou", "min"):
        raise ValueError(f"overlap must be 'iou' or 'min', got {overlap!r}")
    if host_reads is None:
        host_reads = boxes.device.type == "cpu"
    if host_reads and overlap == "iou":
        return _torchvision_rows(boxes, valid, threshold, max_kept)
    b = boxes.shape[0]
    bound = _float32_below(threshold)
    rows = torch.arange(b, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(-1)
    areas = (x2 - x1) * (y2 - y1)
    alive = valid.clone()
    index, found = [], []
    for _ in range(max_kept):
        left = alive.any(1)
        if host_reads and not bool(left.any()):
            break
        first = alive.to(torch.uint8).argmax(1)  # the first alive box of each row
        best = boxes[rows, first]
        w = (torch.minimum(best[:, 2:3], x2) - torch.maximum(best[:, 0:1], x1)).clamp_min(0)
        h = (torch.minimum(best[:, 3:4], y2) - torch.maximum(best[:, 1:2], y1)).clamp_min(0)
        inter = w * h
        mine = areas[rows, first][:, None]
        base = torch.minimum(mine, areas) if overlap == "min" else mine + areas - inter
        alive &= ~(inter / base > bound)
        alive[rows, first] = False
        index.append(first[:, None])
        found.append(left[:, None])
    missing = max_kept - len(index)
    index.append(torch.zeros((b, missing), dtype=torch.long, device=boxes.device))
    found.append(torch.zeros((b, missing), dtype=torch.bool, device=boxes.device))
    return torch.cat(index, 1), torch.cat(found, 1)


def _torchvision_rows(boxes: Tensor, valid: Tensor, threshold: float, max_kept: int) -> Tuple[Tensor, Tensor]:
    """:func:`greedy_nms` by ``torchvision.ops.nms`` on each row's valid boxes (CPU tensors)."""
    from torchvision.ops import nms

    b = boxes.shape[0]
    index = torch.zeros((b, max_kept), dtype=torch.long, device=boxes.device)
    found = torch.zeros((b, max_kept), dtype=torch.bool, device=boxes.device)
    for row in range(b):
        real = valid[row].nonzero().squeeze(1)
        # Ranked best first: the rank is the score, so ties cannot reorder them.
        kept = real[nms(boxes[row, real].float(), -real.to(torch.float32), threshold)[:max_kept]]
        index[row, : len(kept)] = kept
        found[row, : len(kept)] = True
    return index, found


def _float32_below(value: float) -> float:
    """The largest float32 at most ``value``: a float32 IoU is above it exactly when it is above ``value``
    (torchvision's CPU kernel compares in double precision; a float32 comparison would round 0.3 up)."""
    t = torch.tensor(value, dtype=torch.float64).to(torch.float32)
    if float(t) > value:
        t = torch.nextafter(t, torch.tensor(-math.inf))
    return float(t)
