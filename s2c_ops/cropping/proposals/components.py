"""Connected components of binary maps and their boxes, in fixed-size tensor operations on any device.

Nothing here reads a tensor's values on the host except :func:`label_components`' convergence check on
the CPU, where it costs nothing; on other devices the labelling runs a budget of iterations that is
proven to suffice, so it never waits for the device.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _neighbour_max(x: Tensor) -> Tensor:
    """The largest value in each pixel's 3x3 neighbourhood (itself included) of ``x`` ``[N, h, w]`` >= 0."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = torch.maximum(torch.maximum(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _step(labels: Tensor, fg: Tensor, height: int) -> Tensor:
    """One step of :func:`label_components`. ``labels`` ``[N, 1 + h * w]``: slot 0 holds 0 and slot ``i``
    pixel ``i - 1``'s label (0 off the int64 mask ``fg`` ``[N, h * w]``), so a label is the slot of the
    pixel it names and the background names slot 0."""
    n = labels.shape[0]
    grown = _neighbour_max(labels[:, 1:].view(n, height, -1)).view(n, -1) * fg
    grown = F.pad(grown, (1, 0))
    # Label equivalence: the pixel a label names takes the largest label its carriers see.
    grown = grown.scatter_reduce(1, labels, grown, "amax")
    for _ in range(2):  # pointer jumps: each pixel takes the label of the pixel its label names
        grown = torch.maximum(grown, grown.gather(1, grown))
    return grown


def label_components(mask: Tensor) -> Tensor:
    """8-connected components of ``mask`` ``[N, h, w]`` (bool), each map on its own.

    Returns ``int64`` labels ``[N, h, w]`` on ``mask``'s device: 0 for background, and for foreground
    the largest ``1 + flat index`` of the component's pixels (so labels are unique within each map,
    not dense, and do not depend on the labelling order).

    Label propagation: every pixel starts with its own ``1 + flat index``; a step gives each pixel the
    largest label in its 3x3 neighbourhood, then (label equivalence) gives each label's pixel the
    largest label among the pixels that carry it, and lets every pixel take the label of the pixel its
    label names (pointer jumping). A label only ever grows and always names a pixel of its own
    component. Propagation alone reaches the component's largest label after at most ``h * w - 1``
    steps (the longest path inside a component), and the other two parts only make labels larger, so
    ``h * w`` steps always suffice; in practice a handful do. On the CPU the loop stops at the first
    step that changes nothing; elsewhere it runs the whole budget, so the host never waits.
    """
    n, h, w = mask.shape
    if mask.device.type != "cpu":
        return _label(mask, stop=False)
    # About 2**17 cells at a time: the steps then work in the caches, and each chunk stops on its own.
    chunk = max(1, 2**17 // (h * w))
    if n <= chunk:
        return _label(mask, stop=True)
    return torch.cat([_label(part, stop=True) for part in mask.split(chunk)])


def _label(mask: Tensor, stop: bool) -> Tensor:
    """:func:`label_components`; ``stop``: end at the first step that changes nothing."""
    n, h, w = mask.shape
    size = h * w
    fg = mask.reshape(n, size).long()
    labels = F.pad(torch.arange(1, size + 1, device=mask.device).expand(n, size) * fg, (1, 0))
    for _ in range(size):
        grown = _step(labels, fg, h)
        if stop and torch.equal(grown, labels):
            break
        labels = grown
    return labels[:, 1:].reshape(n, h, w)


def component_stats(values: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-component box, value sum and area of labelled maps, in slots indexed by ``label - 1``.

    ``values``: ``[N, h, w]`` float32; ``labels``: ``[N, h, w]`` from :func:`label_components`. Returns
    ``x1, y1, x2, y2, mass, area``, each ``[N, h * w]`` float32: the box in map cells (x2/y2 exclusive),
    the sum of ``values`` over the component (on the CPU added in row-major order) and its cell count.
    Slots that hold no component have area 0.
    """
    n, h, w = labels.shape
    size = h * w
    device = values.device
    # Slot 0 collects the background and is dropped at the end.
    index = labels.flatten(1)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32), torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    xs, ys = xs.reshape(1, size).expand(n, size), ys.reshape(1, size).expand(n, size)

    def reduce(init: float, src: Tensor, how: str) -> Tensor:
        out = torch.full((n, size + 1), init, device=device, dtype=torch.float32)
        return out.scatter_reduce_(1, index, src, how)[:, 1:]

    def total(src: Tensor) -> Tensor:
        return torch.zeros((n, size + 1), device=device, dtype=torch.float32).scatter_add_(1, index, src)[:, 1:]

    big = float(size)
    x1, y1 = reduce(big, xs, "amin"), reduce(big, ys, "amin")
    x2, y2 = reduce(-1.0, xs, "amax") + 1, reduce(-1.0, ys, "amax") + 1
    return x1, y1, x2, y2, total(values.flatten(1)), total(torch.ones_like(values).flatten(1))
