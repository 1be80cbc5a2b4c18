"""Object-box proposers: the D "visual genes" S2CNet needs for each image.

S2CNet relates every candidate crop to exactly ``D`` object boxes per image (``bbox_num``: 10 in the
GAICv1 configuration, 5 in GAICv2). The official code only reads boxes precomputed offline with a
Visual Genome Faster R-CNN; this module makes them for new photos.

A *proposer* is any callable

.. code-block:: python

    proposer(images: Tensor[B, 3, H, W], num_boxes: int) -> list[Tensor[num_boxes, 4]]

with these promises:

* ``images`` is a floating-point batch of **RGB images with values in [0, 1], not normalised** (no
  ImageNet mean/std): what ``torchvision.transforms.functional.to_tensor`` gives, or the model's input
  *before* its normalisation. Give the proposer the same pixels (same height and width) as the
  model, since the boxes are in the pixels of this tensor.
* The result holds one ``float32`` tensor per image, on the images' device, with **exactly**
  ``num_boxes`` rows ``(x1, y1, x2, y2)`` in pixels, inside ``[0, W] x [0, H]``, with ``x2 > x1`` and
  ``y2 > y1``. Boxes come best first.
* Proposers do not track gradients and are deterministic.

Every proposer here brings its own ranked boxes to the same size with :func:`pad_boxes`: the first
``num_boxes`` are kept and missing ones are the whole-image box ``(0, 0, W, H)``.

Proposers:

* :class:`SaliencyProposer` (``"saliency"``, the default): offline, torch only, no weights.
* :class:`TorchvisionDetector`: wraps a torchvision detection model the user brings.
* :class:`GivenBoxes`: boxes the user already has (e.g. the official precomputed files).
* :class:`WholeImage` (``"image"`` or ``"none"``): ``num_boxes`` copies of the whole-image box, a
  trivial baseline.

:func:`get_proposer` builds one by name.
"""
from __future__ import annotations

import abc
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

try:  # Protocol is in typing from Python 3.8 on.
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol, runtime_checkable  # type: ignore

__all__ = [
    "BoxProposer",
    "Proposer",
    "GivenBoxes",
    "WholeImage",
    "SaliencyProposer",
    "TorchvisionDetector",
    "pad_box_sets",
    "pad_boxes",
    "check_images",
    "check_num_boxes",
    "check_value_range",
    "whole_image_boxes",
    "spectral_residual_saliency",
    "saliency_map",
    "global_contrast_saliency",
    "label_components",
    "get_proposer",
    "available_proposers",
]


# ---------------------------------------------------------------------------------------------------
# The protocol, checks and the padding rule
# ---------------------------------------------------------------------------------------------------
@runtime_checkable
class BoxProposer(Protocol):
    """What the model and :class:`s2c_ops.Cropper` accept as a proposer: any callable of this form.

    ``images``: ``Tensor[B, 3, H, W]``, floating point, RGB in [0, 1] (not normalised). Returns a list
    of ``B`` ``float32`` tensors ``[num_boxes, 4]`` ``(x1, y1, x2, y2)`` in pixels of ``images``, on
    its device, inside the image, non-degenerate, best first.
    """

    def __call__(self, images: Tensor, num_boxes: int) -> List[Tensor]:
        ...


def check_images(images: Any) -> Tuple[int, int, int]:
    """Validates a proposer's ``images`` argument and returns ``(B, H, W)``.

    Raises ``TypeError`` for a non-tensor or a non-floating-point tensor and ``ValueError`` for a
    wrong shape (not 4-D, not 3 channels, an empty dimension).
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a Tensor[B, 3, H, W], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(
            f"images must be a 4-D Tensor[B, 3, H, W] (a batch; use images[None] for one image), "
            f"got shape {tuple(images.shape)}"
        )
    if images.shape[1] != 3:
        raise ValueError(f"images must have 3 (RGB) channels in dim 1, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point RGB in [0, 1] (e.g. uint8 / 255), got dtype {images.dtype}"
        )
    b, _, h, w = images.shape
    if h < 1 or w < 1:
        raise ValueError(f"images must have a height and width >= 1, got shape {tuple(images.shape)}")
    return int(b), int(h), int(w)


def check_value_range(images: Tensor, low: float = -0.5, high: float = 1.5) -> None:
    """Raises ``ValueError`` when ``images`` are clearly not RGB in [0, 1].

    Catches the two usual mistakes: images already normalised with a mean and std (most pixels
    then go well below 0) and images in 0..255. The margins leave room for the small overshoot of
    bicubic resizing; NaN is not checked here.
    """
    if images.numel() == 0:
        return
    lo, hi = torch.aminmax(images.detach())
    lo, hi = float(lo), float(hi)
    if lo < low or hi > high:
        raise ValueError(
            f"images must be RGB in [0, 1], not normalised (no mean/std) and not in 0..255; got values "
            f"from {lo:.3g} to {hi:.3g}"
        )


def check_num_boxes(num_boxes: Any) -> int:
    """Validates ``num_boxes`` (an int >= 1)."""
    if isinstance(num_boxes, bool) or not isinstance(num_boxes, int):
        if isinstance(num_boxes, Tensor) and num_boxes.numel() == 1 and not num_boxes.is_floating_point():
            num_boxes = int(num_boxes)
        else:
            raise TypeError(f"num_boxes must be an int, got {type(num_boxes).__name__}")
    if num_boxes < 1:
        raise ValueError(f"num_boxes must be >= 1 (the model's bbox_num), got {num_boxes}")
    return num_boxes


def whole_image_boxes(num_boxes: int, height: int, width: int, device: Union[str, torch.device, None] = None) -> Tensor:
    """``Tensor[num_boxes, 4]`` of the whole-image box ``(0, 0, width, height)``."""
    # Made with fills, never a host-to-device copy (no synchronisation on a GPU).
    zeros = torch.zeros(num_boxes, dtype=torch.float32, device=device)
    return torch.stack([zeros, zeros, torch.full_like(zeros, float(width)), torch.full_like(zeros, float(height))], 1)


def pad_boxes(boxes: Tensor, num_boxes: int, height: int, width: int) -> Tensor:
    """Brings ranked boxes (best first) to exactly ``num_boxes`` valid boxes: the rule every proposer uses.

    Args:
        boxes: ``Tensor[L, 4]`` ``(x1, y1, x2, y2)`` in pixels of an image ``height x width``, best
            first; any ``L`` (0 included), any real dtype.
        num_boxes: how many boxes the model needs (``bbox_num``).
        height, width: the image size in pixels.

    Returns:
        ``float32`` ``Tensor[num_boxes, 4]`` on ``boxes``' device.

    The rule, in order:

    1. Each box is put right: ``x1, x2`` and ``y1, y2`` are swapped where inverted, then clamped to
       ``[0, width]`` and ``[0, height]``.
    2. Boxes with a non-finite coordinate, and boxes with no area left inside the image (zero width or
       height after clamping, e.g. a box wholly outside it), are dropped.
    3. ``L > num_boxes``: the first ``num_boxes`` are kept (proposers rank best first).
    4. ``L < num_boxes``: the missing rows are the **whole-image box** ``(0, 0, width, height)``,
       repeated; ``L == 0`` gives ``num_boxes`` whole-image boxes.

    Why the whole image and not, say, the last box repeated: it is always valid, it is the same for
    every crop of the image (it adds global context but favours no crop over another), it is what a
    detector effectively reports for a scene with no separate object, and it does not give an
    arbitrary low-ranked box extra weight in S2CNet's graph attention, which weighs all ``D`` nodes
    alike.
    """
    return pad_box_sets([boxes], num_boxes, height, width)[0]


def pad_box_sets(box_sets: Sequence[Tensor], num_boxes: int, height: int, width: int) -> Tensor:
    """:func:`pad_boxes` for a batch: ``B`` ranked ``Tensor[L_i, 4]`` of one image size to a
    ``float32`` ``Tensor[B, num_boxes, 4]`` on the first set's device, in a fixed number of tensor
    operations (no loop over the images, no synchronisation on a GPU)."""
    for boxes in box_sets:
        if not isinstance(boxes, Tensor):
            raise TypeError(f"boxes must be a Tensor[L, 4], got {type(boxes).__name__}")
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (L, 4) with rows (x1, y1, x2, y2), got {tuple(boxes.shape)}")
        if boxes.is_complex() or boxes.dtype == torch.bool:
            raise TypeError(f"boxes must be real numbers, got dtype {boxes.dtype}")
    num_boxes = check_num_boxes(num_boxes)
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    n = len(box_sets)
    device = box_sets[0].device if n else None
    # The output, plus one last row where the rows that are not kept are written.
    out = whole_image_boxes(n * num_boxes + 1, height, width, device=device)
    if n == 0:
        return out[:0].view(0, num_boxes, 4)

    b = torch.cat([boxes.detach().to(device=device, dtype=torch.float32) for boxes in box_sets])
    finite = torch.isfinite(b).all(dim=1)
    b = torch.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0)
    x1 = torch.minimum(b[:, 0], b[:, 2]).clamp(0.0, float(width))
    x2 = torch.maximum(b[:, 0], b[:, 2]).clamp(0.0, float(width))
    y1 = torch.minimum(b[:, 1], b[:, 3]).clamp(0.0, float(height))
    y2 = torch.maximum(b[:, 1], b[:, 3]).clamp(0.0, float(height))
    b = torch.stack([x1, y1, x2, y2], dim=1)
    keep = finite & (x2 > x1) & (y2 > y1)
    # Each row's image and its rank among its image's kept rows; the first num_boxes kept rows of
    # each image overwrite its whole-image rows. The counts are known on the host, so nothing waits.
    counts = [int(boxes.shape[0]) for boxes in box_sets]
    starts = torch.tensor([0] + counts[:-1]).cumsum(0).to(b.device, non_blocking=True)
    image = torch.repeat_interleave(torch.arange(n), torch.tensor(counts)).to(b.device, non_blocking=True)
    kept_so_far = keep.long().cumsum(0)
    rank = kept_so_far - 1 - F.pad(kept_so_far, (1, 0))[starts][image]
    row = torch.where(keep & (rank < num_boxes), image * num_boxes + rank, n * num_boxes)
    out.index_put_((row,), b)
    return out[:-1].view(n, num_boxes, 4)


# ---------------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------------
class Proposer(abc.ABC):
    """Base of the proposers here: checks the input, calls :meth:`propose` without autograd, pads.

    Subclasses implement :meth:`propose`, which returns each image's boxes ranked best first, in any
    number; :meth:`__call__` turns them into exactly ``num_boxes`` with :func:`pad_boxes`.
    """

    #: Whether the proposer looks at the pixels (then their range is checked, see
    #: :func:`check_value_range`).
    uses_pixels: bool = True

    def __call__(self, images: Tensor, num_boxes: int) -> List[Tensor]:
        """``images``: ``Tensor[B, 3, H, W]`` float RGB in [0, 1]. Returns ``B`` ``Tensor[num_boxes, 4]``.

        Raises ``TypeError`` / ``ValueError`` for images that are not a float ``[B, 3, H, W]`` tensor
        (or, for proposers that look at the pixels, clearly not in [0, 1]) and for ``num_boxes < 1``.
        An empty batch (``B == 0``) gives an empty list.
        """
        b, h, w = check_images(images)
        num_boxes = check_num_boxes(num_boxes)
        if b == 0:
            return []
        if self.uses_pixels:
            check_value_range(images)
        with torch.no_grad():
            ranked = self.propose(images)
        if len(ranked) != b:
            raise RuntimeError(f"{type(self).__name__}.propose returned {len(ranked)} box sets for {b} images")
        # Padded where the proposer left them, then moved in one copy.
        return list(pad_box_sets(ranked, num_boxes, h, w).to(images.device).unbind(0))

    @abc.abstractmethod
    def propose(self, images: Tensor) -> List[Tensor]:
        """Each image's boxes ``Tensor[L_i, 4]`` best first, any ``L_i``; ``images`` already checked."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class WholeImage(Proposer):
    """``num_boxes`` copies of the whole-image box ``(0, 0, W, H)``: a trivial baseline (no objects)."""

    uses_pixels = False

    def propose(self, images: Tensor) -> List[Tensor]:
        return [images.new_zeros((0, 4), dtype=torch.float32) for _ in range(images.shape[0])]


class GivenBoxes(Proposer):
    """Boxes the user already has, padded or truncated to ``num_boxes`` with :func:`pad_boxes`.

    Args:
        boxes: one of

            * a list (or tuple) of ``Tensor[L_i, 4]`` ``(x1, y1, x2, y2)``, one per image, best first
              (``L_i`` may differ, 0 included);
            * a ``Tensor[B, L, 4]``: ``L`` boxes for each of ``B`` images;
            * a ``Tensor[L, 4]``: the boxes of a single image;
            * a ``Tensor[K, 5]`` of rois ``(batch_index, x1, y1, x2, y2)``, boxes of each image in row
              order; an image with no row gets whole-image boxes.

    The boxes must be in pixels of the ``images`` tensor the proposer is called with (scale them
    with the image when resizing). Calling with a number of images that does not match raises
    ``ValueError``.
    """

    uses_pixels = False

    def __init__(self, boxes: Union[Tensor, Sequence[Tensor]]) -> None:
        self._rois: Optional[Tensor] = None
        if isinstance(boxes, Tensor):
            if boxes.dim() == 3 and boxes.shape[2] == 4:
                per_image = list(boxes.unbind(0))
            elif boxes.dim() == 2 and boxes.shape[1] == 4:
                per_image = [boxes]
            elif boxes.dim() == 2 and boxes.shape[1] == 5:
                if boxes.shape[0] and not torch.isfinite(boxes[:, 0]).all():
                    raise ValueError("rois have a non-finite batch index")
                if boxes.shape[0] and (boxes[:, 0] < 0).any():
                    raise ValueError("rois have a negative batch index")
                self._rois = boxes.detach()
                per_image = []
            else:
                raise ValueError(
                    "boxes given as one tensor must be Tensor[B, L, 4], Tensor[L, 4] (one image) or "
                    f"rois Tensor[K, 5], got shape {tuple(boxes.shape)}"
                )
        elif isinstance(boxes, (list, tuple)):
            per_image = list(boxes)
            for i, b in enumerate(per_image):
                if not isinstance(b, Tensor):
                    raise TypeError(f"boxes[{i}] must be a Tensor[L, 4], got {type(b).__name__}")
                if b.dim() != 2 or b.shape[1] != 4:
                    raise ValueError(
                        f"boxes[{i}] must have shape (L, 4) with rows (x1, y1, x2, y2), got {tuple(b.shape)}"
                    )
        else:
            raise TypeError(
                f"boxes must be a list of Tensor[L, 4] or a Tensor, got {type(boxes).__name__}"
            )
        self.boxes: List[Tensor] = [b.detach() for b in per_image]

    def propose(self, images: Tensor) -> List[Tensor]:
        n = images.shape[0]
        if self._rois is not None:
            index = self._rois[:, 0].long()
            if index.numel() and int(index.max()) >= n:
                raise ValueError(f"rois refer to image {int(index.max())} but {n} image(s) were given")
            return [self._rois[index == i, 1:] for i in range(n)]
        if len(self.boxes) != n:
            raise ValueError(f"GivenBoxes holds boxes for {len(self.boxes)} image(s) but {n} image(s) were given")
        return list(self.boxes)

    def extra_repr(self) -> str:
        if self._rois is not None:
            return f"rois={self._rois.shape[0]}"
        return f"images={len(self.boxes)}"


# ---------------------------------------------------------------------------------------------------
# Saliency
# ---------------------------------------------------------------------------------------------------
def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``x`` ``[N, C, h, w]`` with reflect padding (replicate when tiny).

    Written as a sum of shifted copies rather than a convolution: convolution back ends pick their
    algorithm by batch size, which would make an image's result depend on its batch.
    """
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).tolist()
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    h, w = x.shape[-2:]
    p = F.pad(x, (radius, radius, 0, 0), mode=mode)
    x = sum(k[i] * p[..., :, i : i + w] for i in range(len(k)))
    p = F.pad(x, (0, 0, radius, radius), mode=mode)
    return sum(k[i] * p[..., i : i + h, :] for i in range(len(k)))


def _normalise(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-image min-max to [0, 1] of ``[N, 1, h, w]``; a flat map becomes 0."""
    flat = x.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    rng = hi - lo
    return torch.where(rng > eps, (x - lo) / rng.clamp_min(eps), torch.zeros_like(x))


def _rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1] ``[N, 3, h, w]`` to CIE L*a*b* (D65)."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor(
        [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
        dtype=rgb.dtype,
        device=rgb.device,
    )
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    white = torch.tensor([0.950456, 1.0, 1.088754], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(t > 0.008856, t.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    l = 116.0 * f[:, 1:2] - 16.0
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([l, a, b], dim=1)


def spectral_residual_saliency(gray: Tensor, sigma: float = 2.0) -> Tensor:
    """Spectral residual saliency (Hou & Zhang, CVPR 2007) of ``gray`` ``[N, 1, h, w]``.

    ``log|FFT|`` minus its 3x3 local mean is the "spectral residual"; transformed back with the
    original phase, squared and blurred, it marks the parts of the image that are not predicted by the
    smooth average spectrum of natural images. Returns ``[N, 1, h, w]`` normalised to [0, 1] per image
    (all 0 for a flat image).
    """
    gray = gray.to(torch.float32)
    # One image at a time: batched FFTs may round differently from single ones, and an image's
    # boxes must not depend on the rest of its batch.
    spec = torch.cat([torch.fft.fft2(g) for g in gray.split(1)], dim=0)
    log_amp = torch.log(spec.abs() + 1e-8)
    phase = torch.angle(spec)
    # The 3x3 mean is taken on the spectrum as a periodic signal.
    smooth = F.avg_pool2d(F.pad(log_amp, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    residual = torch.polar(torch.exp(log_amp - smooth), phase)
    sal = torch.cat([torch.fft.ifft2(r) for r in residual.split(1)], dim=0).abs() ** 2
    # A flat image has no structure: its map would be rounding noise blown up by the normalisation.
    flat = gray.flatten(1)
    textured = (flat.max(dim=1).values - flat.min(dim=1).values) > 1e-3
    return _normalise(_gaussian_blur(sal, sigma)) * textured.view(-1, 1, 1, 1)


def global_contrast_saliency(images: Tensor, resolution: int = 32, sigma: float = 0.2) -> Tensor:
    """Spatially weighted global colour contrast (after Cheng et al., "Global contrast based salient
    region detection", CVPR 2011) of ``images`` ``[B, 3, H, W]`` (RGB in [0, 1]).

    The images are area-resized to ``resolution`` pixels on the long side; each pixel's saliency is
    its mean L*a*b* distance to all other pixels, weighted by ``exp(-d^2 / (2 sigma^2))`` of their
    distance ``d`` (a fraction of the long side), so colours that are rare in their surroundings
    stand out. Returns ``[B, 1, h, w]`` in [0, 1] per image (``h, w`` the reduced size). The
    ``(h w)^2`` pairwise distances are computed a few images at a time (about 4 MB at once).
    """
    b, _, h, w = images.shape
    scale = resolution / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    x = F.interpolate(images, size=(sh, sw), mode="area") if (sh, sw) != (h, w) else images
    lab = _rgb_to_lab(x).flatten(2).transpose(1, 2)  # [B, N, 3]
    ys, xs = torch.meshgrid(
        torch.arange(sh, dtype=x.dtype, device=x.device), torch.arange(sw, dtype=x.dtype, device=x.device), indexing="ij"
    )
    pos = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1) / max(sh, sw)  # [N, 2]
    d2 = (pos[:, None, :] - pos[None, :, :]).pow(2).sum(-1)
    weight = torch.exp(-d2 / (2.0 * sigma * sigma))
    weight = weight / weight.sum(dim=1, keepdim=True)
    n = sh * sw
    # About 4 MB of float32 per [chunk, N, N] temporary: larger ones were slower on the CPU (page faults).
    chunk = max(1, (1 << 20) // (n * n))
    out = []
    for start in range(0, b, chunk):
        part = lab[start : start + chunk]
        # Direct differences, not the |a|^2 + |b|^2 - 2ab expansion (whose cancellation is coarse).
        dist = torch.cdist(part, part, compute_mode="donot_use_mm_for_euclid_dist")
        out.append((dist * weight).sum(-1))
    return _normalise(torch.cat(out, dim=0).view(b, 1, sh, sw))


def saliency_map(
    images: Tensor,
    resolution: int = 64,
    spectral_weight: float = 1.0,
    colour_weight: float = 1.0,
    centre_sigma: Optional[float] = 0.4,
    blur: float = 0.03,
) -> Tensor:
    """A saliency map ``[B, 1, h, w]`` in [0, 1] of ``images`` ``[B, 3, H, W]`` (RGB in [0, 1]).

    ``h, w``: the images area-resized so that their long side is ``resolution``. The map is a
    weighted sum of

    * spectral residual saliency of the grey image (:func:`spectral_residual_saliency`): small,
      distinctive structures (eyes, logos, edges of objects);
    * spatially weighted global colour contrast (:func:`global_contrast_saliency`, at half the
      resolution): regions whose colour is rare around them;

    each normalised to [0, 1] per image, multiplied by a Gaussian centre prior (``centre_sigma`` a
    fraction of the image's width and height; ``None`` switches it off) and normalised again.
    ``blur`` is the smoothing of the spectral residual, a fraction of the long side. Values outside
    [0, 1] are clamped and NaN counts as 0.
    """
    b, h, w = check_images(images)
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an int >= 8, got {resolution!r}")
    scale = resolution / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    x = torch.nan_to_num(images.detach().to(torch.float32), nan=0.0).clamp_(0.0, 1.0)  # clamps the copy
    x = F.interpolate(x, size=(sh, sw), mode="area") if (sh, sw) != (h, w) else x

    sal = x.new_zeros((b, 1, sh, sw))
    if spectral_weight:
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        sal = sal + spectral_weight * spectral_residual_saliency(gray, sigma=blur * max(sh, sw))
    if colour_weight:
        contrast = global_contrast_saliency(x, resolution=max(8, resolution // 2))
        if contrast.shape[-2:] != (sh, sw):
            contrast = F.interpolate(contrast, size=(sh, sw), mode="bilinear", align_corners=False)
        sal = sal + colour_weight * contrast
    if centre_sigma is not None and centre_sigma > 0:
        ys = (torch.arange(sh, dtype=x.dtype, device=x.device) + 0.5) / sh - 0.5
        xs = (torch.arange(sw, dtype=x.dtype, device=x.device) + 0.5) / sw - 0.5
        prior = torch.exp(-0.5 * ((ys[:, None] / centre_sigma) ** 2 + (xs[None, :] / centre_sigma) ** 2))
        sal = sal * prior
    return _normalise(sal)


def label_components(mask: Tensor) -> Tensor:
    """8-connected components of ``mask`` ``[N, h, w]`` (bool), each map on its own.

    Returns ``int64`` labels ``[N, h, w]`` on ``mask``'s device: 0 for background, and for foreground
    the largest ``1 + flat index`` of the component's pixels (so labels are unique within each map,
    not dense, and do not depend on the labelling order). Computed with ``scipy.ndimage.label`` on the
    CPU: one C pass, where label propagation in torch took most of the proposer's time.
    """
    from scipy import ndimage

    n, h, w = mask.shape
    maps = mask.detach().cpu().numpy().astype(bool)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8-connected within a map, never across maps
    ids, count = ndimage.label(maps, structure=structure)
    if count == 0:
        return torch.zeros((n, h, w), dtype=torch.int64, device=mask.device)
    # Each component's largest 1 + flat index, by a scatter-max (ndimage.maximum sorts every pixel).
    ids = torch.from_numpy(ids.astype(np.int64)).view(-1)
    flat = torch.arange(1, h * w + 1).repeat(n)
    top = torch.zeros(count + 1, dtype=torch.int64).scatter_reduce(0, ids, flat, "amax")
    top[0] = 0
    return top[ids].view(n, h, w).to(mask.device)


def _component_boxes(sal: Tensor, masks: Tensor, image_index: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boxes (map cells, x2/y2 exclusive), saliency mass, area and image index of every component.

    ``sal``: ``[M, h, w]`` saliency of each mask's image; ``masks``: ``[M, h, w]`` bool;
    ``image_index``: ``[M]``.
    """
    m, h, w = masks.shape
    labels = label_components(masks)
    size = h * w
    # The foreground cells (flat indices, in row-major order), found once for every gather below.
    cells = masks.flatten().nonzero().squeeze(1)
    if cells.numel() == 0:
        z = sal.new_zeros((0,))
        return sal.new_zeros((0, 4)), z, z, torch.zeros((0,), dtype=torch.long, device=sal.device)
    within = cells % size
    key = torch.div(cells, size, rounding_mode="floor") * (size + 1) + labels.flatten()[cells]
    uniq, comp = torch.unique(key, return_inverse=True)
    k = uniq.numel()
    xs = (within % w).to(torch.float32)
    ys = torch.div(within, w, rounding_mode="floor").to(torch.float32)
    big = float(size)
    x1 = torch.full((k,), big, device=sal.device).scatter_reduce(0, comp, xs, "amin")
    y1 = torch.full((k,), big, device=sal.device).scatter_reduce(0, comp, ys, "amin")
    x2 = torch.full((k,), -1.0, device=sal.device).scatter_reduce(0, comp, xs, "amax") + 1
    y2 = torch.full((k,), -1.0, device=sal.device).scatter_reduce(0, comp, ys, "amax") + 1
    mass = torch.zeros((k,), device=sal.device).index_add(0, comp, sal.flatten()[cells])
    area = torch.bincount(comp, minlength=k).to(torch.float32)
    owner = image_index[torch.div(uniq, size + 1, rounding_mode="floor")]
    return torch.stack([x1, y1, x2, y2], dim=1), mass, area, owner


class SaliencyProposer(Proposer):
    """The offline default: boxes around salient regions, from torch and scipy alone (no weights).

    For each image:

    1. :func:`saliency_map` at ``resolution`` pixels on the long side: spectral residual saliency
       (Hou & Zhang 2007) plus L*a*b* colour contrast (Achanta et al. 2009), times a centre prior.
    2. The map is thresholded at each of ``levels`` (fractions of its maximum, 1.0 being the maximum),
       giving nested regions from large (low threshold) to small and distinctive (high threshold): whole
       objects and their parts, much like the object and part boxes of a Visual Genome detector.
    3. The 8-connected components of each mask (:func:`label_components`, ``scipy.ndimage.label``);
       components smaller than ``min_area`` (a fraction of the image) are dropped, and so is the
       whole image (a component whose box covers more than ``max_area`` of it).
    4. Each component's bounding box, scored by its saliency mass (the sum of the map inside the
       component, so large, strongly salient regions come first).
    5. Non-maximum suppression at IoU ``nms_threshold`` (``torchvision.ops.nms``), best first;
       then :func:`pad_boxes` (whole-image boxes fill up the rest).

    Boxes are mapped back to the pixels of ``images``. Everything runs batched on the images' device
    and is deterministic; each image's boxes do not depend on the rest of the batch.
    """

    def __init__(
        self,
        resolution: int = 64,
        levels: Sequence[float] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
        nms_threshold: float = 0.5,
        min_area: float = 0.002,
        max_area: float = 0.95,
        spectral_weight: float = 1.0,
        colour_weight: float = 1.0,
        centre_sigma: Optional[float] = 0.4,
        blur: float = 0.03,
    ) -> None:
        if not isinstance(resolution, int) or resolution < 8:
            raise ValueError(f"resolution must be an int >= 8, got {resolution!r}")
        levels = tuple(float(v) for v in levels)
        if not levels or not all(0.0 < v < 1.0 for v in levels):
            raise ValueError(f"levels must be fractions of the maximum in (0, 1), got {levels}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        if not 0.0 <= min_area < max_area <= 1.0:
            raise ValueError(f"need 0 <= min_area < max_area <= 1, got {min_area}, {max_area}")
        if spectral_weight < 0 or colour_weight < 0 or spectral_weight + colour_weight <= 0:
            raise ValueError("spectral_weight and colour_weight must be >= 0, not both 0")
        self.resolution = resolution
        self.levels = levels
        self.nms_threshold = float(nms_threshold)
        self.min_area = float(min_area)
        self.max_area = float(max_area)
        self.spectral_weight = float(spectral_weight)
        self.colour_weight = float(colour_weight)
        self.centre_sigma = centre_sigma
        self.blur = float(blur)

    def saliency(self, images: Tensor) -> Tensor:
        """The saliency map ``[B, 1, h, w]`` this proposer thresholds (at its working resolution)."""
        return saliency_map(
            images,
            resolution=self.resolution,
            spectral_weight=self.spectral_weight,
            colour_weight=self.colour_weight,
            centre_sigma=self.centre_sigma,
            blur=self.blur,
        )

    def propose_scored(self, images: Tensor) -> List[Tuple[Tensor, Tensor]]:
        """Each image's ``(boxes Tensor[L, 4], scores Tensor[L])`` best first, before padding, on the CPU
        (where they are computed).

        The score of a box is its component's saliency mass as a fraction of the map's area.
        """
        from torchvision.ops import nms

        b, h, w = check_images(images)
        # The map is made on the images' device; the rest works on a few thousand cells and runs
        # on the CPU, where every step is deterministic.
        sal = self.saliency(images)[:, 0].cpu()  # [B, sh, sw]
        sh, sw = sal.shape[-2:]
        cells = float(sh * sw)
        t = len(self.levels)
        levels = torch.tensor(self.levels, dtype=sal.dtype)
        peak = sal.flatten(1).max(dim=1).values  # [B]
        thresholds = levels.view(1, -1) * peak.view(-1, 1)  # [B, T]
        masks = (sal[:, None] > thresholds[:, :, None, None]) & (peak.view(-1, 1, 1, 1) > 0)
        image_index = torch.arange(b).repeat_interleave(t)
        boxes, mass, area, owner = _component_boxes(
            sal[:, None].expand(b, t, sh, sw).reshape(b * t, sh, sw), masks.reshape(b * t, sh, sw), image_index
        )
        box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / cells
        keep = (area / cells >= self.min_area) & (box_area <= self.max_area)
        boxes, score, owner = boxes[keep], mass[keep] / cells, owner[keep]
        boxes = boxes * torch.tensor([w / sw, h / sh, w / sw, h / sh], dtype=torch.float32)  # to pixels
        # Each image's components best first (ties keep their order): a stable sort by score, then a
        # stable sort by image, and the images' runs split off without a mask per image.
        order = torch.sort(score, descending=True, stable=True).indices
        order = order[torch.sort(owner[order], stable=True).indices]
        counts = torch.bincount(owner, minlength=b).tolist()
        out = []
        for bi, si in zip(boxes[order].split(counts), score[order].split(counts)):
            # One image at a time (batched_nms offsets each image's boxes, which rounds differently).
            kept = nms(bi, -torch.arange(bi.shape[0], dtype=torch.float32), self.nms_threshold)
            out.append((bi[kept], si[kept]))
        return out

    def propose(self, images: Tensor) -> List[Tensor]:
        return [boxes for boxes, _ in self.propose_scored(images)]

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, levels={self.levels}, nms_threshold={self.nms_threshold}, "
            f"min_area={self.min_area}, max_area={self.max_area}"
        )


# ---------------------------------------------------------------------------------------------------
# torchvision detectors
# ---------------------------------------------------------------------------------------------------
class TorchvisionDetector(Proposer):
    """Adapter for torchvision detection models (Faster R-CNN, RetinaNet, FCOS, SSD, ...).

    Args:
        model: a detection model in torchvision's inference interface: called with a list of
            ``[3, H, W]`` images in [0, 1], it returns one dict per image with ``"boxes"``
            (``[L, 4]`` ``(x1, y1, x2, y2)`` in the input's pixels) and ``"scores"`` (``[L]``). E.g.
            ``torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(weights="DEFAULT")``.
            The user brings the weights; the model does its own normalisation and resizing.
        score_threshold: detections scoring below it are dropped.
        labels: keep only these class labels (``None``: all).

    The model is put in eval mode when called (torchvision detectors need it to return detections)
    and runs on its own device (the images are moved there); the boxes come back on the images'
    device, ranked by score (best first), then :func:`pad_boxes` fills up with whole-image boxes.
    """

    def __init__(self, model: Callable[..., Any], score_threshold: float = 0.3, labels: Optional[Sequence[int]] = None) -> None:
        if not callable(model):
            raise TypeError(f"model must be a callable detection model, got {type(model).__name__}")
        score_threshold = float(score_threshold)
        if not math.isfinite(score_threshold):
            raise ValueError(f"score_threshold must be finite, got {score_threshold}")
        self.model = model
        self.score_threshold = score_threshold
        self.labels = None if labels is None else tuple(int(v) for v in labels)

    def _model_device(self, default: torch.device) -> torch.device:
        params = getattr(self.model, "parameters", None)
        if callable(params):
            for p in params():
                return p.device
        return default

    def propose(self, images: Tensor) -> List[Tensor]:
        if isinstance(self.model, torch.nn.Module) and self.model.training:
            self.model.eval()
        device = self._model_device(images.device)
        outputs = self.model(list(images.to(device)))
        if not isinstance(outputs, (list, tuple)) or len(outputs) != images.shape[0]:
            raise RuntimeError(
                f"the detection model must return a list of {images.shape[0]} dicts, got {type(outputs).__name__}"
                + (f" of length {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
            )
        ranked = []
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or "boxes" not in out or "scores" not in out:
                raise RuntimeError(f"detection output {i} must be a dict with 'boxes' and 'scores'")
            boxes = out["boxes"].detach().to(images.device, torch.float32).reshape(-1, 4)
            scores = out["scores"].detach().to(images.device, torch.float32).reshape(-1)
            if scores.shape[0] != boxes.shape[0]:
                raise RuntimeError(f"detection output {i} has {boxes.shape[0]} boxes but {scores.shape[0]} scores")
            keep = scores >= self.score_threshold
            if self.labels is not None and "labels" in out:
                labels = out["labels"].detach().to(images.device).reshape(-1)
                keep &= torch.isin(labels, torch.tensor(self.labels, device=images.device, dtype=labels.dtype))
            boxes, scores = boxes[keep], scores[keep]
            order = torch.sort(scores, descending=True, stable=True).indices
            ranked.append(boxes[order])
        return ranked

    def extra_repr(self) -> str:
        name = type(self.model).__name__
        return f"model={name}, score_threshold={self.score_threshold}" + (
            f", labels={self.labels}" if self.labels is not None else ""
        )


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------
_REGISTRY: Dict[str, Callable[..., Proposer]] = {
    "saliency": SaliencyProposer,
    "image": WholeImage,
    "none": WholeImage,
}


def available_proposers() -> List[str]:
    """The names :func:`get_proposer` knows."""
    return sorted(_REGISTRY)


def get_proposer(name: str = "saliency", **kwargs: Any) -> Proposer:
    """A proposer by name: ``"saliency"`` (the default, :class:`SaliencyProposer`) or ``"image"`` /
    ``"none"`` (:class:`WholeImage`, whole-image boxes only). ``kwargs`` go to its constructor.

    Detectors and given boxes need an object (a model, the boxes): build :class:`TorchvisionDetector`
    and :class:`GivenBoxes` directly.
    """
    if not isinstance(name, str):
        raise TypeError(f"proposer name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown proposer {name!r}; valid names: {', '.join(available_proposers())}")
    return _REGISTRY[key](**kwargs)
