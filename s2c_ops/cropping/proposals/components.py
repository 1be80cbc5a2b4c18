"""Connected components of binary maps and their boxes, in fixed-size tensor operations on any device.

Nothing here reads a tensor's values on the host except :func:`label_components`' convergence check on
the CPU, where it costs nothing; on other devices the labelling runs a number of rounds, logarithmic
in the map's size, that is proven to suffice, so it never waits for the device.
"""
from __future__ import annotations

from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _around(x: Tensor, reduce: Callable[[Tensor, Tensor], Tensor], outside: int) -> Tensor:
    """``reduce`` (``torch.maximum`` or ``torch.minimum``) over each pixel's 3x3 neighbourhood (itself
    included) of ``x`` ``[N, h, w]``, cells off the map counting as ``outside``."""
    p = F.pad(x, (1, 1, 1, 1), value=outside)
    rows = reduce(reduce(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return reduce(reduce(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _step(labels: Tensor, fg: Tensor, height: int) -> Tensor:
    """One step of :func:`_propagate`. ``labels`` ``[N, 1 + h * w]``: slot 0 holds 0 and slot ``i``
    pixel ``i - 1``'s label (0 off the int64 mask ``fg`` ``[N, h * w]``), so a label is the slot of the
    pixel it names and the background names slot 0."""
    n = labels.shape[0]
    grown = _around(labels[:, 1:].view(n, height, -1), torch.maximum, 0).view(n, -1) * fg
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

    On the CPU by label propagation (:func:`_propagate`), which stops at the first step that changes
    nothing: on saliency masks a handful of its steps cost about half what hooking and shortcutting
    does there. Elsewhere by hooking and shortcutting (:func:`_hook_and_shortcut`):
    ``floor(log2(h * w))`` rounds (11 for 43x64), proven to suffice for any mask, run in full, so the
    host never waits. Both give the same labels.
    """
    n, h, w = mask.shape
    if mask.device.type != "cpu":
        return _hook_and_shortcut(mask)
    # About 2**17 cells at a time: the steps then work in the caches, and each chunk stops on its own.
    chunk = max(1, 2**17 // (h * w))
    if n <= chunk:
        return _propagate(mask)
    return torch.cat([_propagate(part) for part in mask.split(chunk)])


def _propagate(mask: Tensor) -> Tensor:
    """:func:`label_components` by label propagation, until a step changes nothing.

    Every pixel starts with its own ``1 + flat index``; a step gives each pixel the largest label in
    its 3x3 neighbourhood, then (label equivalence) gives each label's pixel the largest label among
    the pixels that carry it, and lets every pixel take the label of the pixel its label names
    (pointer jumping). A label only ever grows and always names a pixel of its own component.
    Propagation alone reaches the component's largest label after at most ``h * w - 1`` steps (the
    longest path inside a component), and the other two parts only make labels larger, so ``h * w``
    steps always suffice; in practice a handful do.
    """
    n, h, w = mask.shape
    size = h * w
    fg = mask.reshape(n, size).long()
    labels = F.pad(torch.arange(1, size + 1, device=mask.device).expand(n, size) * fg, (1, 0))
    for _ in range(size):
        grown = _step(labels, fg, h)
        if torch.equal(grown, labels):
            break
        labels = grown
    return labels[:, 1:].reshape(n, h, w)


def _round_budget(size: int) -> int:
    """The rounds of :func:`_hook_and_shortcut` that finish every component of a map of ``size``
    cells: ``floor(log2(size))``, how often ``size`` halves, rounding down, before it reaches 1."""
    return max(size, 1).bit_length() - 1


def _forest(mask: Tensor) -> Tuple[Tensor, Tensor]:
    """The forest before the first round of :func:`_round`, and each slot's own number (both
    ``[N, 1 + h * w]`` int64). Slot 0 is the background's, slot ``i`` pixel ``i - 1``'s: a foreground
    pixel is its own parent and the background's parent is slot 0; the own number of the background
    and of slot 0 is ``1 + h * w``, more than any slot, so that they are never taken for roots."""
    n = mask.shape[0]
    fg = F.pad(mask.reshape(n, -1), (1, 0))
    ids = torch.arange(fg.shape[1], device=mask.device).expand_as(fg)
    return ids * fg, torch.where(fg, ids, fg.shape[1])


def _round(parent: Tensor, own: Tensor, height: int) -> Tensor:
    """One round of :func:`_hook_and_shortcut` on the forest ``parent`` (``own`` from :func:`_forest`)
    of maps ``height`` high."""
    n, slots = parent.shape
    grand = parent.gather(1, parent)
    pixels = grand[:, 1:].view(n, height, -1)
    high = F.pad(_around(pixels, torch.maximum, 0).view(n, -1), (1, 0))
    low = _around(torch.where(pixels > 0, pixels, slots), torch.minimum, slots)
    low = F.pad(low.view(n, -1), (1, 0))
    # A pixel at depth <= 1 hands its root the largest grandparent around it; a deeper one hands its
    # grandparent ``slots``, which marks a root whose tree is no star and is all a non-root receives.
    up = torch.zeros_like(parent).scatter_reduce_(1, grand, torch.where(grand == parent, high, slots), "amax")
    down = torch.full_like(parent, slots).scatter_reduce_(1, parent, low, "amin")
    hook = (up > own) & (up < slots)
    hooked_onto = torch.zeros_like(hook).scatter_(1, torch.where(hook, up, 0), True)
    stagnant = (up == own) & (down < own) & ~hooked_onto
    parent = torch.where(hook, up, torch.where(stagnant, down, parent))
    parent = parent.gather(1, parent)
    return parent.gather(1, parent)


def _hook_and_shortcut(mask: Tensor) -> Tensor:
    """:func:`label_components` in ``floor(log2(h * w))`` rounds of hooking and shortcutting.

    Shiloach and Vishkin's method, in Awerbuch and Shiloach's form, on the graph of 8-adjacent
    foreground pixels. Every pixel points at a parent in its component (at first itself), so the
    pointers make rooted trees; a star is a tree of height <= 1. With ``p`` the parents at the start
    of a round and ``g = p[p]``, a round

    1. hooks conditionally: a star's root ``r`` points at the largest ``g(v)`` over the neighbours
       ``v`` of the star's pixels, if that is larger than ``r``;
    2. hooks unconditionally, at the same time: the root of a stagnant star (one that does not hook in
       1 and that nothing hooks onto in 1) points at the smallest such ``g(v)``, if that is smaller;
    3. shortcuts twice: every pixel points at its grandparent, then does so again.

    Why that many rounds suffice. In a star ``g`` is the root, so a candidate other than ``r`` lies
    in a neighbouring tree. Conditional hooks go up in label, so they chain stars without cycles and
    end at a tree that does not hook: a non-star, or a star hooked onto. Two stagnant stars are never
    adjacent (the smaller root would see the larger and hook in 1), so nothing hooks onto a stagnant
    star and the hooks make no cycle. Each new tree is thus an old tree that did not hook (its base)
    with stars hung below it. Give a tree of height ``t`` the weight ``max(t, 1)`` and a component the
    total weight ``P`` of its trees: ``P`` starts at the component's size, and ``P = 1`` exactly when
    the component is one star, which no round changes. Otherwise take a new tree made of a base of
    weight ``b`` with ``c`` conditional and ``s`` stagnant stars, ``k = b + c + s``: ``k >= 2``, as a
    non-star weighs >= 2 and a star base was hooked onto in 1 (else it would be stagnant and hook in
    2). A hook lands on the root of a conditional star or on a ``g(v)`` of the base, at depth
    <= ``b - 1``, so each star of a conditional chain hangs one level below the next, the chain's
    pixels end at most ``b + c`` deep and a stagnant star's one level deeper: the tree is at most
    ``b + c + [s > 0] <= k`` high before step 3. Two shortcuts take height ``d`` to ``ceil(d / 4)``,
    so the tree weighs at most ``ceil(k / 4) <= k / 2``: each round at least halves ``P``, rounding
    down, until it is 1. Every pixel then points at its component's root, which gathers the
    component's largest ``1 + flat index``.
    """
    n, h, w = mask.shape
    first, own = _forest(mask)
    parent = first
    for _ in range(_round_budget(h * w)):
        parent = _round(parent, own, h)
    top = torch.zeros_like(parent).scatter_reduce_(1, parent, first, "amax")
    return top.gather(1, parent)[:, 1:].reshape(n, h, w)


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
