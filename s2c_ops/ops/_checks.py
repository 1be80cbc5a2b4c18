"""Input validation of the pure-PyTorch operators: csrc/align_checks.cpp in Python, with the same order,
exception types and messages, so both implementations reject the same calls the same way."""
import math

import torch
from torch import Tensor

# The dtypes the kernels dispatch on (AT_DISPATCH_FLOATING_TYPES_AND2(Half, BFloat16)).
KERNEL_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _dtype_name(dtype: torch.dtype) -> str:
    # c10's name of a dtype ("Float", "BFloat16"), as in torch.FloatTensor.
    return torch.empty(0, dtype=dtype).type()[len("torch."):-len("Tensor")]


def _check_common(op: str, features: Tensor, features_name: str, rois: Tensor, spatial_scale: float,
                  pooled_height: int, pooled_width: int) -> None:
    if not features.is_floating_point():
        raise TypeError(f"{op}: {features_name} must be a floating-point tensor, got {_dtype_name(features.dtype)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(
            f"{op}: rois must have shape (K, 5) with rows (batch_index, x1, y1, x2, y2), got shape {list(rois.shape)}"
        )
    if rois.dtype != features.dtype:
        raise TypeError(
            f"{op}: rois must have the dtype of {features_name} ({_dtype_name(features.dtype)}), "
            f"got {_dtype_name(rois.dtype)}"
        )
    if rois.device != features.device:
        raise RuntimeError(
            f"{op}: {features_name} and rois must be on the same device, got {features.device} and {rois.device}"
        )
    if not (math.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"{op}: spatial_scale must be a finite positive number, got {spatial_scale:f}")
    if pooled_height < 2 or pooled_width < 2:
        raise ValueError(
            f"{op}: pooled_height and pooled_width must be at least 2, got ({pooled_height}, {pooled_width})"
        )
    if features.dtype not in KERNEL_DTYPES:
        raise RuntimeError(f'"{op}" not implemented for \'{_dtype_name(features.dtype)}\'')


def _check_feature_size(op: str, height: int, width: int) -> None:
    if height < 2 or width < 2:
        raise ValueError(f"{op}: the feature map must be at least 2x2, got {height}x{width}")


def check_forward(op: str, input: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                  pooled_width: int) -> None:
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be a 4-D tensor (N, C, H, W), got shape {list(input.shape)}")
    _check_common(op, input, "input", rois, spatial_scale, pooled_height, pooled_width)
    _check_feature_size(op, input.shape[2], input.shape[3])
    check_roi_values(op, rois, input.shape[0])


def check_backward(op: str, grad: Tensor, rois: Tensor, spatial_scale: float, pooled_height: int,
                   pooled_width: int, batch_size: int, channels: int, height: int, width: int) -> None:
    _check_common(op, grad, "grad", rois, spatial_scale, pooled_height, pooled_width)
    if batch_size < 0 or channels < 0:
        raise ValueError(f"{op}: batch_size and channels must be non-negative, got {batch_size} and {channels}")
    _check_feature_size(op, height, width)
    expected = (rois.shape[0], channels, pooled_height, pooled_width)
    if tuple(grad.shape) != expected:
        raise ValueError(
            f"{op}: grad must have shape (K, C, pooled_height, pooled_width) = ({', '.join(map(str, expected))}), "
            f"got {list(grad.shape)}"
        )
    check_roi_values(op, rois, batch_size)


def host_may_read(tensor: Tensor) -> bool:
    """Whether a check may read ``tensor``'s values on the host: not for a CUDA tensor while a CUDA graph
    is captured (no synchronisation is allowed) or while CUDA's sync debug mode is "error" (the caller
    asked for none). Value checks are skipped then."""
    if not tensor.is_cuda:
        return True
    return not torch.cuda.is_current_stream_capturing() and torch.cuda.get_sync_debug_mode() != 2


def check_roi_values(op: str, rois: Tensor, batch_size: int) -> None:
    """Finite rois with whole batch indices in [0, batch_size); raises for the first row that is not.
    Skipped where :func:`host_may_read` says no: the kernels then give NaN for a bad batch index, as the
    CUDA kernels do."""
    if not host_may_read(rois):
        return
    r = rois.detach().double()
    finite = torch.isfinite(r).all(dim=1)
    batch = r[:, 0]
    not_whole = finite & (batch != batch.floor())
    out_of_range = finite & ~not_whole & ((batch < 0) | (batch >= batch_size))
    bad = (~finite | not_whole | out_of_range).nonzero()
    if bad.numel() == 0:
        return
    row = int(bad[0, 0])
    if not finite[row]:
        raise ValueError(f"{op}: rois must be finite; row {row} holds NaN or infinity")
    if not_whole[row]:
        raise ValueError(f"{op}: the batch index (column 0 of rois) must be a whole number; row {row} is not")
    raise IndexError(f"{op}: batch index out of range: row {row} of rois names an image outside [0, {batch_size})")
