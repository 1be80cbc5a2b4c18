"""The one check of float pixels given to the package (the Cropper, ``s2c crop`` through
:func:`~s2c_ops.cropping.images.image_to_tensor`, and ``AestheticCrop``): RGB values in [0, 1].

NaN, infinite values and values outside [0, 1] (say 0..255, or a mean/std normalisation) would still get a
crop, and a meaningless one, so they raise ``ValueError`` naming the range found and the fix. PIL images
and uint8 tensors need no check. The check reads one reduction on the host, which on a GPU makes the host
wait for the device: ``validate=None`` checks only on the CPU, ``True`` everywhere, ``False`` nowhere; it
is skipped wherever :func:`~s2c_ops.ops._checks.host_may_read` says no (a CUDA graph being captured, sync
debug mode "error").
"""
from typing import Optional

import torch
from torch import Tensor

from ..ops._checks import host_may_read

#: Values this close past 0 or 1 pass (and are clamped where used): resampling rounds past the ends by
#: about 1e-7 (torch's antialiased bilinear resize of values in [0, 1], for one).
TOLERANCE = 1e-3


def check_unit_range(images: Tensor, validate: Optional[bool] = True) -> None:
    """Raises ``ValueError`` when float ``images`` hold NaN, infinity or values outside [0, 1] (past
    :data:`TOLERANCE`)."""
    if validate is False or not images.is_floating_point() or images.numel() == 0 or not host_may_read(images):
        return
    if validate is None and images.device.type != "cpu":
        return
    lo, hi = torch.stack(torch.aminmax(images.detach())).tolist()  # one read; NaN propagates to both
    if lo != lo:
        raise ValueError("images hold NaN values: give RGB values in [0, 1]")
    if lo == float("-inf") or hi == float("inf"):
        raise ValueError(f"images hold infinite values (from {lo:g} to {hi:g}): give RGB values in [0, 1]")
    if lo >= -TOLERANCE and hi <= 1 + TOLERANCE:
        return
    if lo < -0.5:
        fix = "undo the mean/std normalisation"
    elif hi > 1.5:
        fix = "divide 8-bit values (0..255) by 255"
    else:
        fix = "clamp(0, 1) a slight overshoot (say from bicubic resizing)"
    raise ValueError(f"images must be RGB values in [0, 1], got values from {lo:.4g} to {hi:.4g}: {fix}")
