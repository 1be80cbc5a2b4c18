"""The s2c operators in plain PyTorch, for when the compiled library (s2c_ops._C) is missing or does not
fit the imported torch (see _extension.py).

Same schemas, semantics, validation (_checks.py) and sampling arithmetic as csrc/: positions are rounded
to the accumulation type where the kernels round them (align_common.h), so every point on an ROI border
falls on the same side. Values agree to float rounding. One kernel serves every device
(CompositeExplicitAutograd); fake kernels and autograd come from _registration.py, as for the compiled
operators. Slower than the kernels (benchmarks/bench_ops.py) and it allocates per-sample temporaries.

Determinism: the backward sums with ``index_add_``, which is deterministic on the CPU and, on CUDA,
only under ``torch.use_deterministic_algorithms(True)`` (torch then takes its deterministic path).
"""
from typing import Dict, Tuple

import torch
from torch import Tensor

from . import _checks, _registration

SCHEMAS = {
    "rod_align": "rod_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width) -> Tensor",
    "gaic_roi_align": "gaic_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width) -> Tensor",
    "_rod_align_backward": "_rod_align_backward(Tensor grad, Tensor rois, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
    "SymInt width) -> Tensor",
    "_gaic_roi_align_backward": "_gaic_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
    "SymInt width) -> Tensor",
}

_LIBRARIES: Dict[str, torch.library.Library] = {}


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    # at::opmath_type: float for the 16-bit types.
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _Axis:
    """axis_sample of align_common.h over a tensor of positions: lower neighbour, fraction, validity."""

    def __init__(self, pos: Tensor, size: int) -> None:
        self.valid = (pos >= 0) & (pos < size)  # NaN positions are invalid too
        floor = torch.floor(pos)
        lo = torch.where(self.valid, torch.where(floor < size - 2, floor, size - 2), 0)
        self.lo = lo.long()
        self.frac = torch.where(self.valid, pos - lo, 0)


class _Grid:
    """Rows `y` x columns `x` of sample points on an H x W map, as tensors broadcasting to (..., ph, pw)."""

    def __init__(self, y: _Axis, x: _Axis, height: int, width: int) -> None:
        self.ylo, self.xlo = y.lo[..., :, None], x.lo[..., None, :]
        self.fy, self.fx = y.frac[..., :, None, None], x.frac[..., None, :, None]  # against (..., ph, pw, C)
        self.valid = (y.valid[..., :, None] & x.valid[..., None, :])[..., None]
        self.height, self.width = height, width

    def _corners(self):
        """The 4 neighbours of every point: (dy, dx, weight along y, weight along x)."""
        fy, fx = self.fy, self.fx
        return [(0, 0, 1 - fy, 1 - fx), (0, 1, 1 - fy, fx), (1, 0, fy, 1 - fx), (1, 1, fy, fx)]

    def gather(self, planes: Tensor, image: Tensor, acc: torch.dtype) -> Tensor:
        """Bilinear samples (..., ph, pw, C) of channels-last `planes` (N, H, W, C) from the images
        `image` (broadcasting to (..., 1, 1)); 0 at points outside the map."""
        v = [planes[image, self.ylo + dy, self.xlo + dx].to(acc) for dy, dx, _, _ in self._corners()]
        fy, fx = self.fy, self.fx
        # align_common.h's bilinear, in its order of operations.
        out = v[0] * (1 - fy) * (1 - fx) + v[1] * (1 - fy) * fx + v[2] * fy * (1 - fx) + v[3] * fy * fx
        return torch.where(self.valid, out, 0)

    def scatter(self, grad: Tensor, image: Tensor, planes: Tensor) -> None:
        """The adjoint of gather (scatter_bilinear): adds `grad` (..., ph, pw, C) into `planes`
        (N * H * W, C)."""
        for dy, dx, wy, wx in self._corners():
            index = (image * self.height + self.ylo + dy) * self.width + self.xlo + dx
            value = torch.where(self.valid, grad * wy * wx, 0)
            planes.index_add_(0, index.reshape(-1), value.reshape(-1, value.shape[-1]))


def _rod_axis(size: int, pooled: int, acc: torch.dtype, device: torch.device) -> Tuple[Tensor, _Axis]:
    """RoDAlign's points along an axis of the whole map: i * (size - 1.001) / (pooled - 1) (rod_step).
    The step is computed in tensors, not Python floats, so that ``size`` may be symbolic (ONNX export with
    dynamic shapes, decompositions.py); the roundings are rod_step's."""
    extent = (torch.full((), size, dtype=torch.float64, device=device) - 1.001).to(acc).double()
    step = (extent / (pooled - 1.0)).to(acc)
    pos = torch.arange(pooled, dtype=acc, device=device) * step
    return pos, _Axis(pos, size)


def _roi_axis(start: Tensor, end: Tensor, pooled: int, size: int) -> _Axis:
    """GAIC's (K, pooled) points over [start, end + 1] of each scaled ROI (roi_step, roi_position)."""
    extent = (end - start).double() + 1.0
    step = (torch.where(extent > 0, extent, 0).to(start.dtype).double() / (pooled - 1.0)).to(start.dtype)
    pos = torch.arange(pooled, dtype=start.dtype, device=start.device)[None, :] * step[:, None] + start[:, None]
    return _Axis(pos, size)


class _Rois:
    """scale_roi for every ROI: batch indices (a bad one read as 0, see `valid`) and x1, y1, x2, y2 in
    feature coordinates."""

    def __init__(self, rois: Tensor, spatial_scale: float, batch_size: int, acc: torch.dtype) -> None:
        r = rois.to(acc)
        batch = torch.where(r[:, 0] >= 0, r[:, 0], -1).trunc()
        self.valid = (batch >= 0) & (batch < batch_size)
        self.batch = torch.where(self.valid, batch, 0).long()
        # A tensor: traceable (decompositions.py); made in float64 and cast, so a scale past acc's range is
        # infinite there, as the kernels' cast makes it.
        scale = torch.full((), spatial_scale, dtype=torch.float64, device=rois.device).to(acc)
        self.x1, self.y1, self.x2, self.y2 = (r[:, 1:] * scale).unbind(1)

    def image(self) -> Tensor:
        return self.batch[:, None, None]


def _output(channels_last: Tensor, rois: _Rois, dtype: torch.dtype) -> Tensor:
    """(K, ph, pw, C) results as a contiguous (K, C, ph, pw) tensor of `dtype`; NaN for a bad batch
    index, as the CUDA kernels give when their value checks are skipped."""
    out = torch.where(rois.valid[:, None, None, None], channels_last, float("nan"))
    return out.permute(0, 3, 1, 2).to(dtype).contiguous()


def _grad_input(planes: Tensor, N: int, C: int, H: int, W: int, dtype: torch.dtype) -> Tensor:
    return planes.view(N, H, W, C).permute(0, 3, 1, 2).to(dtype).contiguous()


def rod_align(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int) -> Tensor:
    _checks.check_forward("s2c::rod_align", input, rois, spatial_scale, pooled_height, pooled_width)
    return rod_align_unchecked(input, rois, spatial_scale, pooled_height, pooled_width)


def rod_align_unchecked(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                        pooled_width: int) -> Tensor:
    """:func:`rod_align` without the input checks (which read values): traceable with symbolic shapes."""
    N, C, H, W = input.shape
    acc = _acc_dtype(input.dtype)
    ypos, y = _rod_axis(H, pooled_height, acc, input.device)
    xpos, x = _rod_axis(W, pooled_width, acc, input.device)
    # Every image sampled once on the grid they all share, then each ROI zeroes the points it holds.
    images = torch.arange(N, device=input.device)[:, None, None]
    sampled = _Grid(y, x, H, W).gather(input.permute(0, 2, 3, 1), images, acc)
    r = _Rois(rois, spatial_scale, N, acc)
    inside = _inside(ypos, xpos, r)
    return _output(torch.where(inside, 0, sampled[r.batch]), r, input.dtype)


def _inside(ypos: Tensor, xpos: Tensor, r: _Rois) -> Tensor:
    """(K, ph, pw, 1): whether each grid point lies in each ROI, bounds included (in_span)."""
    in_y = (ypos >= r.y1[:, None]) & (ypos <= r.y2[:, None])
    in_x = (xpos >= r.x1[:, None]) & (xpos <= r.x2[:, None])
    return (in_y[:, :, None] & in_x[:, None, :])[..., None]


def rod_align_backward(grad: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int, pooled_width: int,
                       batch_size: int, channels: int, height: int, width: int) -> Tensor:
    _checks.check_backward("s2c::_rod_align_backward", grad, rois, spatial_scale, pooled_height, pooled_width,
                           batch_size, channels, height, width)
    N, C, H, W = batch_size, channels, height, width
    acc = _acc_dtype(grad.dtype)
    ypos, y = _rod_axis(H, pooled_height, acc, grad.device)
    xpos, x = _rod_axis(W, pooled_width, acc, grad.device)
    r = _Rois(rois, spatial_scale, N, acc)
    # Each image's kept gradients summed over its ROIs, then scattered once.
    kept_per_roi = torch.where(_inside(ypos, xpos, r) | ~r.valid[:, None, None, None], 0,
                               grad.permute(0, 2, 3, 1).to(acc))
    kept = grad.new_zeros((N, pooled_height, pooled_width, C), dtype=acc).index_add_(0, r.batch, kept_per_roi)
    planes = grad.new_zeros((N * H * W, C), dtype=acc)
    _Grid(y, x, H, W).scatter(kept, torch.arange(N, device=grad.device)[:, None, None], planes)
    return _grad_input(planes, N, C, H, W, grad.dtype)


def _roi_grid(r: _Rois, pooled_height: int, pooled_width: int, H: int, W: int) -> _Grid:
    return _Grid(_roi_axis(r.y1, r.y2, pooled_height, H), _roi_axis(r.x1, r.x2, pooled_width, W), H, W)


def gaic_roi_align(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                   pooled_width: int) -> Tensor:
    _checks.check_forward("s2c::gaic_roi_align", input, rois, spatial_scale, pooled_height, pooled_width)
    return gaic_roi_align_unchecked(input, rois, spatial_scale, pooled_height, pooled_width)


def gaic_roi_align_unchecked(input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                             pooled_width: int) -> Tensor:
    """:func:`gaic_roi_align` without the input checks: traceable with symbolic shapes."""
    N, C, H, W = input.shape
    acc = _acc_dtype(input.dtype)
    r = _Rois(rois, spatial_scale, N, acc)
    out = _roi_grid(r, pooled_height, pooled_width, H, W).gather(input.permute(0, 2, 3, 1), r.image(), acc)
    return _output(out, r, input.dtype)


def gaic_roi_align_backward(grad: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                            pooled_width: int, batch_size: int, channels: int, height: int, width: int) -> Tensor:
    _checks.check_backward("s2c::_gaic_roi_align_backward", grad, rois, spatial_scale, pooled_height,
                           pooled_width, batch_size, channels, height, width)
    N, C, H, W = batch_size, channels, height, width
    acc = _acc_dtype(grad.dtype)
    r = _Rois(rois, spatial_scale, N, acc)
    g = torch.where(r.valid[:, None, None, None], grad.permute(0, 2, 3, 1).to(acc), 0)
    planes = grad.new_zeros((N * H * W, C), dtype=acc)
    _roi_grid(r, pooled_height, pooled_width, H, W).scatter(g, r.image(), planes)
    return _grad_input(planes, N, C, H, W, grad.dtype)


KERNELS = {
    "rod_align": rod_align,
    "gaic_roi_align": gaic_roi_align,
    "_rod_align_backward": rod_align_backward,
    "_gaic_roi_align_backward": gaic_roi_align_backward,
}


def _autocast_kernel(namespace: str, name: str, key: str, device_type: str):
    """Runs the operator in float32 and returns the input's dtype, as csrc/autocast does (float64 stays)."""
    op = getattr(getattr(torch.ops, namespace), name)
    keys = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key))

    def cast(t: Tensor) -> Tensor:
        eligible = t.is_floating_point() and t.dtype != torch.float64 and t.device.type == device_type
        return t.float() if eligible else t

    def kernel(input, rois, spatial_scale, pooled_height, pooled_width):
        with torch._C._ExcludeDispatchKeyGuard(keys):
            return op(cast(input), cast(rois), spatial_scale, pooled_height, pooled_width).to(input.dtype)

    return kernel


def register(namespace: str = "s2c") -> None:
    """Defines the four operators in `namespace` with these kernels, autocast, fake kernels and autograd.
    s2c_ops does this for ``s2c`` when the compiled library cannot be used; the tests and benchmarks
    also register them under another namespace beside the compiled ones."""
    if namespace in _LIBRARIES:
        return
    lib = torch.library.Library(namespace, "DEF")
    for name, schema in SCHEMAS.items():
        lib.define(schema)
        lib.impl(name, KERNELS[name], "CompositeExplicitAutograd")
    for name in _registration.ALIGN_OPS:
        for key, device_type in (("AutocastCPU", "cpu"), ("AutocastCUDA", "cuda")):
            lib.impl(name, _autocast_kernel(namespace, name, key, device_type), key)
    _LIBRARIES[namespace] = lib
    _registration.register(namespace)
