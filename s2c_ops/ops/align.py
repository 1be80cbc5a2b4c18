"""RoDAlign and GAIC RoIAlign, torchvision-style: functions and modules over ``torch.ops.s2c``.

Both sample an exact ``(h, w)`` grid of bilinear points (no sampling ratio, no bin averaging):
``gaic_roi_align`` spreads it over each box, ``rod_align`` over the whole feature map and zeroes the
points inside the box (the "region of discard"). The ``*_avg`` forms are what S2CNet and GAIC use:
align at ``(h + 1, w + 1)`` points, then 2x2 average pooling with stride 1.
"""
from typing import Tuple, Union

import torch
from torch import Tensor, nn

from ._registration import FUNCTIONS
from .boxes import BoxesLike, boxes_to_rois

Size = Union[int, Tuple[int, int]]


def _pair(output_size: Size) -> Tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, int) for s in size):
        raise ValueError(f"output_size must be an int or a pair of ints, got {output_size!r}")
    return size


def _call(name: str, input: Tensor, rois: Tensor, spatial_scale: float, h: int, w: int) -> Tensor:
    """``torch.ops.s2c.<name>``; under a torch.func transform its autograd.Function, applied here above the
    dispatcher (the only place grad and jvp can reach it)."""
    if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
        if torch._C._are_functorch_transforms_active():
            return FUNCTIONS[f"s2c::{name}"].apply(input, rois, spatial_scale, h, w)
    return getattr(torch.ops.s2c, name)(input, rois, spatial_scale, h, w)


def rod_align(input: Tensor, boxes: BoxesLike, output_size: Size, spatial_scale: float = 1.0) -> Tensor:
    """RoDAlign of ``input`` (N, C, H, W) for each box: ``Tensor[K, C, h, w]``.

    ``boxes`` are in image coordinates (``feature = image * spatial_scale``), either ``Tensor[K, 5]``
    rows ``(batch_index, x1, y1, x2, y2)`` or a list of ``Tensor[L, 4]``, one per image.
    """
    h, w = _pair(output_size)
    return _call("rod_align", input, boxes_to_rois(boxes), spatial_scale, h, w)


def gaic_roi_align(input: Tensor, boxes: BoxesLike, output_size: Size, spatial_scale: float = 1.0) -> Tensor:
    """GAIC RoIAlign of ``input`` (N, C, H, W) for each box: ``Tensor[K, C, h, w]``.

    Samples ``h x w`` points spread over ``[x1, x2 + 1] x [y1, y2 + 1]`` of each scaled box; points
    outside the feature map give 0. ``boxes`` as in :func:`rod_align`.
    """
    h, w = _pair(output_size)
    return _call("gaic_roi_align", input, boxes_to_rois(boxes), spatial_scale, h, w)


def _avg(align, input: Tensor, boxes: BoxesLike, output_size: Size, spatial_scale: float) -> Tensor:
    h, w = _pair(output_size)
    x = align(input, boxes, (h + 1, w + 1), spatial_scale)
    # 2x2 average pooling with stride 1, written out: faster than avg_pool2d on these small maps.
    return (x[..., :-1, :-1] + x[..., :-1, 1:] + x[..., 1:, :-1] + x[..., 1:, 1:]) / 4


def rod_align_avg(input: Tensor, boxes: BoxesLike, output_size: Size, spatial_scale: float = 1.0) -> Tensor:
    """S2CNet's RoDAlignAvg: :func:`rod_align` at ``output_size + 1`` points, then 2x2 average pooling.

    Unlike the official module, a non-square ``output_size`` keeps height and width in place.
    """
    return _avg(rod_align, input, boxes, output_size, spatial_scale)


def gaic_roi_align_avg(input: Tensor, boxes: BoxesLike, output_size: Size, spatial_scale: float = 1.0) -> Tensor:
    """GAIC's RoIAlignAvg: :func:`gaic_roi_align` at ``output_size + 1`` points, then 2x2 average pooling."""
    return _avg(gaic_roi_align, input, boxes, output_size, spatial_scale)


class _Align(nn.Module):
    _fn = staticmethod(rod_align)

    def __init__(self, output_size: Size, spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)

    def forward(self, input: Tensor, boxes: BoxesLike) -> Tensor:
        return type(self)._fn(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class RoDAlign(_Align):
    """Module form of :func:`rod_align`."""

    _fn = staticmethod(rod_align)


class GaicRoIAlign(_Align):
    """Module form of :func:`gaic_roi_align`."""

    _fn = staticmethod(gaic_roi_align)


class RoDAlignAvg(_Align):
    """Module form of :func:`rod_align_avg`."""

    _fn = staticmethod(rod_align_avg)


class GaicRoIAlignAvg(_Align):
    """Module form of :func:`gaic_roi_align_avg`."""

    _fn = staticmethod(gaic_roi_align_avg)
