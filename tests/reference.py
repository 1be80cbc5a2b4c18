"""Plain-PyTorch statements of the official align semantics (shared/golden/README.md), differentiable
through autograd. Slow and simple on purpose: the kernels are checked against them."""
import torch
from torch import Tensor


def _axis(pos: Tensor, size: int):
    valid = (pos >= 0) & (pos < size)
    lo = torch.clamp(torch.floor(pos), max=size - 2).clamp(min=0)
    return lo.long(), pos - lo, valid


def _sample(plane: Tensor, ys: Tensor, xs: Tensor) -> Tensor:
    """Bilinear samples of plane (C, H, W) on the grid ys x xs (0 outside the map): (C, len(ys), len(xs))."""
    H, W = plane.shape[-2:]
    y0, fy, vy = _axis(ys, H)
    x0, fx, vx = _axis(xs, W)
    fy, fx = fy[:, None], fx[None, :]

    def at(dy, dx):
        return plane[:, (y0 + dy)[:, None], (x0 + dx)[None, :]]

    out = at(0, 0) * (1 - fy) * (1 - fx) + at(0, 1) * (1 - fy) * fx + at(1, 0) * fy * (1 - fx) + at(1, 1) * fy * fx
    return out * (vy[:, None] & vx[None, :])


def roi_align(input: Tensor, rois: Tensor, scale: float, ph: int, pw: int) -> Tensor:
    out = []
    for r in rois:
        x1, y1, x2, y2 = (r[1:] * scale).unbind()
        sy = torch.clamp(y2 - y1 + 1, min=0) / (ph - 1)
        sx = torch.clamp(x2 - x1 + 1, min=0) / (pw - 1)
        ys = y1 + torch.arange(ph, dtype=input.dtype, device=input.device) * sy
        xs = x1 + torch.arange(pw, dtype=input.dtype, device=input.device) * sx
        out.append(_sample(input[int(r[0])], ys, xs))
    return torch.stack(out) if out else input.new_zeros((0, input.shape[1], ph, pw))


def rod_align(input: Tensor, rois: Tensor, scale: float, ph: int, pw: int) -> Tensor:
    H, W = input.shape[-2:]
    ys = torch.arange(ph, dtype=input.dtype, device=input.device) * ((H - 1.001) / (ph - 1))
    xs = torch.arange(pw, dtype=input.dtype, device=input.device) * ((W - 1.001) / (pw - 1))
    out = []
    for r in rois:
        x1, y1, x2, y2 = (r[1:] * scale).unbind()
        inside = ((ys >= y1) & (ys <= y2))[:, None] & ((xs >= x1) & (xs <= x2))[None, :]
        out.append(_sample(input[int(r[0])], ys, xs) * ~inside)
    return torch.stack(out) if out else input.new_zeros((0, input.shape[1], ph, pw))
