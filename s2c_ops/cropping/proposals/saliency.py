"""The saliency proposer: boxes around salient regions, from torch alone (no weights).

The map is spectral residual saliency plus global colour contrast under a centre prior; boxes are the
connected components of the map thresholded at several levels, ranked by saliency mass, after non-maximum
suppression.
"""
from __future__ import annotations

import functools
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops.constants import constant
from .base import ProposedObjects, Proposer, check_images, pad_ranked_boxes
from .components import component_stats, label_components
from .nms import greedy_nms


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
    m = constant(
        (0.412453, 0.357580, 0.180423, 0.212671, 0.715160, 0.072169, 0.019334, 0.119193, 0.950227),
        rgb.dtype,
        rgb.device,
    ).view(3, 3)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    white = constant((0.950456, 1.0, 1.088754), rgb.dtype, rgb.device).view(1, 3, 1, 1)
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


@functools.lru_cache(maxsize=16)
def _contrast_weights(sh: int, sw: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The ``[N, N]`` spatial weights of :func:`global_contrast_saliency` (rows sum to 1), made once per
    map size; never written to."""
    ys, xs = torch.meshgrid(
        torch.arange(sh, dtype=dtype, device=device), torch.arange(sw, dtype=dtype, device=device), indexing="ij"
    )
    pos = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1) / max(sh, sw)  # [N, 2]
    d2 = (pos[:, None, :] - pos[None, :, :]).pow(2).sum(-1)
    weight = torch.exp(-d2 / (2.0 * sigma * sigma))
    return weight / weight.sum(dim=1, keepdim=True)


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
    weight = _contrast_weights(sh, sw, sigma, x.dtype, x.device)
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


def _in_unit_range(x: Tensor) -> bool:
    """Whether every value of ``x`` lies in [0, 1] (NaN does not)."""
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(lo >= 0) and bool(hi <= 1)


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
    x = images.detach().to(torch.float32)
    # On the CPU, checking costs less than a full-size copy, and images in [0, 1] need none; elsewhere
    # the check would make the host wait.
    if x.device.type != "cpu" or not _in_unit_range(x):
        x = torch.nan_to_num(x, nan=0.0).clamp_(0.0, 1.0)  # clamps the copy
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


class SaliencyProposer(Proposer):
    """The offline default: boxes around salient regions, from torch alone (no weights).

    For each image:

    1. :func:`saliency_map` at ``resolution`` pixels on the long side: spectral residual saliency
       (Hou & Zhang 2007) plus L*a*b* colour contrast (Achanta et al. 2009), times a centre prior.
    2. The map is thresholded at each of ``levels`` (fractions of its maximum, 1.0 being the maximum),
       giving nested regions from large (low threshold) to small and distinctive (high threshold): whole
       objects and their parts, much like the object and part boxes of a Visual Genome detector.
    3. The 8-connected components of each mask (:func:`label_components`);
       components smaller than ``min_area`` (a fraction of the image) are dropped, and so is the
       whole image (a component whose box covers more than ``max_area`` of it).
    4. Each component's bounding box, scored by its saliency mass (the sum of the map inside the
       component, so large, strongly salient regions come first).
    5. Non-maximum suppression at IoU ``nms_threshold`` (:func:`greedy_nms`, the boxes
       ``torchvision.ops.nms`` keeps), best first; then :func:`pad_boxes` (whole-image boxes fill up
       the rest).

    Boxes are mapped back to the pixels of ``images``. Everything runs batched on the images' device
    in tensor operations and is deterministic on the CPU (a GPU sums a component's saliency in no fixed
    order, so near-ties may rank differently there); each image's boxes do not depend on the rest of the
    batch. Without ``faces``, :meth:`propose_objects` works on fixed-size tensors throughout and never
    waits for the device (after the pixel check, :func:`~s2c_ops.cropping.pixels.check_unit_range`).

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

    def ranked_components(self, images: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Every image's component boxes in its pixels ``[B, P, 4]``, their scores ``[B, P]`` and which
        are real ``[B, P]``: per image, the real ones first, best first (ties in the order of the
        thresholds, then of the labels), before non-maximum suppression; on the images' device.

        ``P`` is fixed by the map size and the settings (no image can have more components left after
        the ``min_area`` floor); on the CPU it is the most any image of the batch has. The score of a
        box is its component's saliency mass as a fraction of the map's area.
        """
        b, h, w = images.shape[0], images.shape[2], images.shape[3]
        sal = self.saliency(images)[:, 0]  # [B, sh, sw]
        sh, sw = sal.shape[-2:]
        size = sh * sw
        cells = float(size)
        t = len(self.levels)
        peak = sal.flatten(1).max(dim=1).values  # [B]
        thresholds = torch.stack([peak * level for level in self.levels], dim=1)  # [B, T]
        masks = (sal[:, None] > thresholds[:, :, None, None]) & (peak.view(-1, 1, 1, 1) > 0)
        sal = sal[:, None].expand(b, t, sh, sw).reshape(b * t, sh, sw)
        x1, y1, x2, y2, mass, area = component_stats(sal, label_components(masks.reshape(b * t, sh, sw)))
        box_area = (x2 - x1) * (y2 - y1) / cells
        keep = ((area > 0) & (area / cells >= self.min_area) & (box_area <= self.max_area)).view(b, t * size)
        score = (mass / cells).view(b, t * size)
        # Slots run threshold by threshold, label by label: a stable sort keeps that order among ties.
        order = torch.sort(torch.where(keep, score, -math.inf), dim=1, descending=True, stable=True).indices
        limit = t * (size // self._min_cells(size))
        if sal.device.type == "cpu":  # reading the count costs nothing there, and spares the NMS most slots
            limit = max(1, min(limit, int(keep.sum(1).max())))
        order = order[:, :limit]

        def take(v: Tensor, scale: float) -> Tensor:
            return v.reshape(b, t * size).gather(1, order) * scale  # to pixels

        sx, sy = w / sw, h / sh
        boxes = torch.stack([take(x1, sx), take(y1, sy), take(x2, sx), take(y2, sy)], dim=-1)
        return boxes, score.gather(1, order), keep.gather(1, order)

    def _min_cells(self, size: int) -> int:
        """The fewest cells a component of a ``size``-cell map needs to pass ``min_area`` (at least 1)."""
        passes = torch.arange(1, size + 1, dtype=torch.float32) / float(size) >= self.min_area
        return int(passes.int().argmax()) + 1

    def propose_scored(self, images: Tensor) -> List[Tuple[Tensor, Tensor]]:
        """Each image's ``(boxes Tensor[L, 4], scores Tensor[L])`` best first, before padding, on the
        images' device: :meth:`ranked_components` after non-maximum suppression (the number of boxes
        kept is read back from the device)."""
        check_images(images)
        boxes, score, valid = self.ranked_components(images)
        index, found = greedy_nms(boxes, valid, self.nms_threshold, boxes.shape[1])
        counts = found.sum(1).tolist()
        return [(bi[ii[:n]], si[ii[:n]]) for bi, si, ii, n in zip(boxes, score, index, counts)]

    def _propose_objects(self, images: Tensor, num_boxes: int, details=None) -> ProposedObjects:
        # Only the first num_boxes boxes NMS keeps are needed: fixed sizes throughout.
        b, _, h, w = images.shape
        boxes, _, valid = self.ranked_components(images)
        index, found = greedy_nms(boxes, valid, self.nms_threshold, num_boxes)
        kept = boxes.gather(1, index[..., None].expand(-1, -1, 4))
        padded = pad_ranked_boxes(kept, found, num_boxes, h, w)
        empty = images.new_zeros((0, 4), dtype=torch.float32)
        return ProposedObjects(list(padded.unbind(0)), [empty] * b)

    def propose(self, images: Tensor) -> List[Tensor]:
        return [boxes for boxes, _ in self.propose_scored(images)]

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, levels={self.levels}, nms_threshold={self.nms_threshold}, "
            f"min_area={self.min_area}, max_area={self.max_area}"
        )
