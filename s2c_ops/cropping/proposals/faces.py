"""Faces: MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", 2016) in PyTorch, with its published weights shipped in the package (``weights/mtcnn.safetensors``,
MIT licence: ``weights/MTCNN_LICENSE.txt``; ``make mtcnn-weights`` converts them again).

Three small CNNs in a cascade: P-Net scans an image pyramid for face-like 12x12 windows, R-Net re-scores
their 24x24 crops and O-Net their 48x48 crops; each stage corrects the boxes (regression) and drops the
ones below its threshold, with non-maximum suppression between stages. Everything runs batched on the
images' device in fixed-size tensors (each stage keeps a fixed number of candidates per image, with a
mask of the real ones), so the detector itself never makes the host wait.

The default proposer (``create_proposer("default")``) puts the faces' head boxes
before its saliency boxes, and the Cropper keeps the faces whole.
"""
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from ...rng import keeps_global_rng
from ..images import Photos, image_to_tensor, photo_list
from ..pixels import check_unit_range
from .base import Detail
from .nms import greedy_nms

#: The weights file in ``s2c_ops/weights`` (converted by ``tools/convert_mtcnn.py``).
WEIGHTS = "mtcnn.safetensors"


def _stage(channels: Sequence[int], kernels: Sequence[int], pools: Sequence[Tuple[int, int]]) -> List[Tuple[str, nn.Module]]:
    """conv -> PReLU (-> max pool) layers named ``conv{i}``, ``prelu{i}``, ``pool{i}`` (the published names)."""
    layers: List[Tuple[str, nn.Module]] = []
    for i, (cin, cout, k) in enumerate(zip(channels[:-1], channels[1:], kernels), start=1):
        layers += [(f"conv{i}", nn.Conv2d(cin, cout, k)), (f"prelu{i}", nn.PReLU(cout))]
        if i <= len(pools):
            size, stride = pools[i - 1]
            layers.append((f"pool{i}", nn.MaxPool2d(size, stride, ceil_mode=True)))
    return layers


class PNet(nn.Module):
    """The proposal network: fully convolutional, one output cell per 12x12 window at stride 2. Returns the
    face probability ``[B, h, w]`` and the box regression ``[B, 4, h, w]`` (offsets of x1, y1, x2, y2 as
    fractions of the window's side)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(OrderedDict(_stage((3, 10, 16, 32), (3, 3, 3), [(2, 2)])))
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x = self.body(x)
        return torch.softmax(self.conv4_1(x), 1)[:, 1], self.conv4_2(x)


class _Refine(nn.Module):
    """R-Net and O-Net: a crop of fixed size in, the face probability ``[N]`` and regression ``[N, 4]`` out.
    The dense layers read the last feature map in (width, height, channel) order: the published weights
    come from a framework that stored images transposed."""

    def __init__(self, channels, kernels, pools, dense: Tuple[int, int], heads: Dict[str, int]) -> None:
        super().__init__()
        self.body = nn.Sequential(OrderedDict(_stage(channels, kernels, pools)))
        n = len(kernels) + 1
        self.dense = nn.Sequential(OrderedDict([(f"dense{n}", nn.Linear(*dense)), (f"prelu{n}", nn.PReLU(dense[1]))]))
        self.heads = nn.ModuleDict({name: nn.Linear(dense[1], size) for name, size in heads.items()})

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x = self.dense(self.body(x).permute(0, 3, 2, 1).flatten(1))
        prob, reg = (head(x) for head in self.heads.values())
        return torch.softmax(prob, 1)[:, 1], reg


def rnet() -> _Refine:
    """R-Net: 24x24 crops."""
    return _Refine((3, 28, 48, 64), (3, 3, 2), [(3, 2), (3, 2)], (576, 128), {"dense5_1": 2, "dense5_2": 4})


def onet() -> _Refine:
    """O-Net: 48x48 crops (its landmark head is not used here and not shipped)."""
    return _Refine((3, 32, 64, 64, 128), (3, 3, 3, 2), [(3, 2), (3, 2), (2, 2)], (1152, 256),
                   {"dense6_1": 2, "dense6_2": 4})


def published_names(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A state dict of :class:`MTCNNNets` from one in the published layout (``pnet.conv1.weight``,
    ``rnet.dense4.weight``, ``onet.dense6_1.bias``, ...; O-Net's landmark head dropped)."""
    dense = {"rnet": ("dense4", "prelu4"), "onet": ("dense5", "prelu5")}
    out = {}
    for key, value in state.items():
        net, _, rest = key.partition(".")
        layer = rest.split(".")[0]
        if layer == "dense6_3":
            continue
        if layer.startswith(("conv4_", "dense5_", "dense6_")):
            part = "" if net == "pnet" else "heads."
        else:
            part = "dense." if layer in dense.get(net, ()) else "body."
        out[f"{net}.{part}{rest}"] = value
    return out


class MTCNNNets(nn.Module):
    """The three networks, as the weights file holds them."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), rnet(), onet()


@functools.lru_cache(maxsize=8)
@keeps_global_rng
def _shipped_nets(device: torch.device) -> MTCNNNets:
    """The shipped networks on ``device``, loaded once per device (never trained or changed)."""
    from safetensors.torch import load_file

    nets = MTCNNNets()
    with resources.as_file(resources.files("s2c_ops") / "weights" / WEIGHTS) as path:
        nets.load_state_dict(load_file(str(path)))
    # Channels-last: the convolutions and max pools with few channels run about a quarter faster on the CPU.
    return nets.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)


@dataclass
class FaceBoxes:
    """Fixed-size detections of a batch: ``boxes`` ``[B, F, 4]`` ``(x1, y1, x2, y2)`` in the images' pixels,
    ``scores`` ``[B, F]`` (O-Net's face probability) and ``valid`` ``[B, F]``; per image, the real faces
    come first, best first."""

    boxes: Tensor
    scores: Tensor
    valid: Tensor

    def unpadded(self) -> List[Tensor]:
        """Each image's real face boxes ``Tensor[F_i, 4]`` (reads the counts back from the device)."""
        counts = self.valid.sum(1).tolist()
        return [b[:n] for b, n in zip(self.boxes, counts)]


def _square(boxes: Tensor) -> Tensor:
    """The square of each box's longer side around its centre."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]).amax(-1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], -1)


def _regress(boxes: Tensor, reg: Tensor) -> Tensor:
    """Boxes moved by a stage's regression (offsets of x1, y1, x2, y2 as fractions of width and height)."""
    size = boxes[..., 2:] - boxes[..., :2]
    return boxes + reg * torch.cat([size, size], -1)


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``values`` ``[B, N]`` or ``[B, N, C]`` at ``index`` ``[B, K]`` of each row."""
    if values.dim() == 2:
        return values.gather(1, index)
    return values.gather(1, index[..., None].expand(-1, -1, values.shape[-1]))


def _nms(boxes: Tensor, scores: Tensor, valid: Tensor, threshold: float, keep: int, host_reads: bool,
         overlap: str = "iou") -> Tuple[Tensor, Tensor]:
    """Greedy NMS of each row's valid boxes by decreasing score: the first ``keep`` kept, as ``index``
    ``[B, keep]`` into the row and ``found`` ``[B, keep]`` (:func:`greedy_nms`)."""
    order = torch.sort(torch.where(valid, scores, -math.inf), dim=1, descending=True, stable=True).indices
    index, found = greedy_nms(_take(boxes, order), _take(valid, order), threshold, keep, overlap,
                              host_reads=host_reads)
    return order.gather(1, index), found


def _unit_batch(images: Tensor) -> Tensor:
    """A (B, 3, H, W) batch of RGB as float32 in [0, 1]: uint8 values divided by 255, float values checked
    (:func:`~s2c_ops.cropping.pixels.check_unit_range`, on the CPU)."""
    if not isinstance(images, Tensor):
        raise TypeError(f"FaceDetector.detect takes a (B, 3, H, W) tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"FaceDetector.detect takes a (B, 3, H, W) RGB batch, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.detach().float().div_(255.0)
    if not images.is_floating_point():
        raise TypeError(f"FaceDetector takes uint8 or float RGB (values in [0, 1]), got {images.dtype}")
    check_unit_range(images, None)
    return images.detach().float()


def _normalise(x: Tensor) -> Tensor:
    """[0, 1] RGB to the networks' input, (value * 255 - 127.5) / 128, channels-last as the networks are."""
    return ((x * 255.0 - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class SecondLook:
    """Where the first pass found faces, a second look at the photo itself at ``factor`` times the
    resolution of the first, for faces of heights from ``smallest`` to ``largest`` times the tallest face
    found, in the rows ``band`` times the tallest above and below the faces found. At the Cropper's 256
    pixels MTCNN misses faces of a group that are smaller than, or as large as, the ones it finds (a 12-pixel
    window, little detail); the second look finds most of them at the price of one more, narrow pyramid,
    and only in photos with faces. When the smallest face sought is ``reliable`` pixels tall or more (in the
    first pass's image), the first pass finds such faces and there is no second look. Faces it finds that
    overlap one already found by IoU ``overlap`` or more are the same face. On by default
    (``FaceDetector(second_look=None)`` turns it off); measured in ``docs/ablation.md``."""

    factor: float = 1.5
    smallest: float = 0.5
    largest: float = 1.5
    overlap: float = 0.3
    band: float = 2.0
    reliable: float = 24.0

    def __post_init__(self) -> None:
        if (not self.factor > 1.0 or not 0.0 < self.smallest < self.largest or not 0.0 < self.overlap <= 1.0
                or not self.band >= 0.0 or not self.reliable > 0.0):
            raise ValueError("SecondLook needs factor > 1, 0 < smallest < largest, overlap in (0, 1], band >= 0 "
                             f"and reliable > 0, got {self}")


class FaceDetector(nn.Module):
    """Face boxes of photos with MTCNN (module docstring): photos as the package takes them (PIL images,
    uint8 tensors in 0..255 or float tensors in [0, 1], ``(3, H, W)`` or ``(B, 3, H, W)``, or a list), on any
    device; boxes in each photo's pixels (a PIL photo's upright pixels).

    Faces down to ``min_face`` of the images' short side are looked for (P-Net's 12-pixel window is scaled
    to it, then the pyramid shrinks by ``factor`` until the short side is 12 pixels). ``thresholds`` are the
    three stages' face probabilities (the published ones). Per image, P-Net keeps its ``candidates[0]`` best
    windows of each scale, non-maximum suppression at IoU 0.5 within a scale and 0.7 across scales leaves
    ``candidates[1]`` for R-Net, NMS at 0.7 ``candidates[2]`` for O-Net, and the faces are O-Net's boxes after
    NMS at 0.7 of the smaller box. Give it antialiased images (aliasing erases small faces).
    Calling it gives each image's faces (``List[Tensor[F_i, 4]]``); :meth:`detect` the fixed-size form.
    ``second_look`` (:class:`SecondLook`): how :meth:`look_again` seeks, in the photo at a finer resolution,
    the faces of a group the first pass missed (``None``: never).
    """

    def __init__(self, min_face: float = 0.06, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, candidates: Sequence[int] = (128, 64, 32),
                 second_look: Optional[SecondLook] = SecondLook()) -> None:
        super().__init__()
        if second_look is not None and not isinstance(second_look, SecondLook):
            raise TypeError(f"second_look must be a SecondLook or None, got {type(second_look).__name__}")
        if not 0.0 < min_face < 1.0:
            raise ValueError(f"min_face must be a fraction of the short side in (0, 1), got {min_face}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t < 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities in [0, 1), got {thresholds}")
        candidates = tuple(int(c) for c in candidates)
        if len(candidates) != 3 or min(candidates) < 1:
            raise ValueError(f"candidates must be three counts >= 1, got {candidates}")
        self.min_face = float(min_face)
        self.thresholds = thresholds
        self.factor = float(factor)
        self.candidates = candidates
        self.second_look = second_look

    def scales(self, height: int, width: int, sizes: Optional[Tuple[float, float]] = None) -> List[float]:
        """The pyramid's scales for an image of this size: for faces from ``min_face`` of the short side up to
        the short side, or of heights within ``sizes`` (smallest, largest; pixels). Empty when the image is
        too small for a 12-pixel face."""
        short = min(height, width)
        smallest, largest = sizes if sizes is not None else (self.min_face * short, short)
        scale = 12.0 / max(smallest, 12.0)
        out = []
        while short * scale >= 12.0 and largest * scale >= 12.0:
            out.append(scale)
            scale *= self.factor
        return out

    def detect(self, images: Tensor, *, host_reads: Optional[bool] = None,
               sizes: Optional[Tuple[float, float]] = None) -> FaceBoxes:
        """The faces of ``images`` (a (B, 3, H, W) batch, uint8 or float in [0, 1]) in fixed-size form
        (:class:`FaceBoxes`, ``F = candidates[2]``); ``sizes``: only faces of heights within (smallest, largest)
        pixels (:meth:`scales`).

        ``host_reads`` (default: on the CPU only, where it costs nothing): the refining stages look only at
        the candidates still in the race and NMS reads its counts back. Without, every step works on the
        fixed-size tensors and the host never waits. The faces are the same.
        """
        x = _unit_batch(images)
        b, _, h, w = x.shape
        nets = _shipped_nets(images.device)
        if b == 0:
            k = self.candidates[2]
            return FaceBoxes(x.new_zeros((0, k, 4)), x.new_zeros((0, k)), torch.zeros((0, k), dtype=torch.bool, device=x.device))
        reads = x.device.type == "cpu" if host_reads is None else bool(host_reads)
        with torch.no_grad():
            boxes, scores, valid = self._propose(nets.pnet, x, reads, self.scales(h, w, sizes))
            # The refining stages' crops reach past the image for faces at its edge (their boxes are squares):
            # there the edge's pixels are repeated, not black (a black band hides faces at the edge), up to
            # half the longer side past it (a face box as large as the short side, centred on the edge).
            # (For faces of heights within ``sizes``, up to the largest of them past it.)
            margin = max(h, w) // 2 if sizes is None else min(max(h, w) // 2, math.ceil(sizes[1]))
            padded = F.pad(x, (margin,) * 4, mode="replicate")
            boxes, scores, valid = self._refine(nets.rnet, padded, margin, boxes, scores, valid, 24, 1, reads)
            boxes, scores, valid = self._refine(nets.onet, padded, margin, boxes, scores, valid, 48, 2, reads)
        bounds = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        return FaceBoxes(torch.minimum(boxes.clamp_min(0), bounds), scores, valid)

    def _propose(self, pnet: PNet, x: Tensor, reads: bool, scales: List[float]) -> Tuple[Tensor, Tensor, Tensor]:
        """Stage 1: P-Net's best windows of each scale, NMS within then across scales, regressed and squared."""
        b, _, h, w = x.shape
        found = []
        for level, scale in enumerate(scales):
            size = (max(12, math.ceil(h * scale)), max(12, math.ceil(w * scale)))
            prob, reg = pnet(_normalise(F.interpolate(x, size=size, mode="area")))
            score, index = prob.flatten(1).topk(min(self.candidates[0], prob[0].numel()), 1)
            cy = torch.div(index, prob.shape[2], rounding_mode="floor")
            corner = torch.stack([index - cy * prob.shape[2], cy], -1).to(x.dtype) * 2
            back = torch.tensor([w / size[1], h / size[0]] * 2, dtype=x.dtype, device=x.device)
            window = torch.cat([corner, corner + 12], -1) * back
            offsets = _take(reg.flatten(2).transpose(1, 2), index)
            found.append((window, score, offsets, torch.full_like(score, level)))
        if not found:
            return x.new_zeros((b, 1, 4)), x.new_zeros((b, 1)), torch.zeros((b, 1), dtype=torch.bool, device=x.device)
        window, score, offsets, level = (torch.cat(v, 1) for v in zip(*found))
        # Within each scale first: the scales' boxes are moved apart, so only boxes of one scale overlap.
        apart = window + (level * (2 * max(h, w) + 24))[..., None]
        index, valid = _nms(apart, score, score >= self.thresholds[0], 0.5, 2 * self.candidates[1], reads)
        window, score, offsets = _take(window, index), _take(score, index), _take(offsets, index)
        index, valid = _nms(window, score, valid, 0.7, self.candidates[1], reads)
        boxes = _regress(_take(window, index), _take(offsets, index))
        return _square(boxes), _take(score, index), valid

    def _refine(self, net: nn.Module, padded: Tensor, margin: int, boxes: Tensor, scores: Tensor, valid: Tensor,
                size: int, stage: int, reads: bool) -> Tuple[Tensor, Tensor, Tensor]:
        """Stage 2 (R-Net) or 3 (O-Net): each candidate's crop (of the images ``padded`` by ``margin`` pixels
        on each side) re-scored; those below the stage's threshold dropped, NMS, boxes regressed (and squared
        for the next stage)."""
        from torchvision.ops import roi_align

        b, k = boxes.shape[:2]
        batch = torch.arange(b, dtype=boxes.dtype, device=boxes.device).repeat_interleave(k)[:, None]
        rois = torch.cat([batch, boxes.reshape(-1, 4) + margin], 1)
        prob, reg = padded.new_zeros(b * k), padded.new_zeros((b * k, 4))
        # Reading the mask back, only the candidates still in the race are looked at (most photos have few).
        rows = valid.reshape(-1).nonzero().squeeze(1) if reads else slice(None)
        crops = roi_align(padded, rois[rows], size, 1.0, -1, aligned=True)
        if len(crops):
            prob[rows], reg[rows] = net(_normalise(crops))
        prob, reg = prob.view(b, k), reg.view(b, k, 4)
        valid = valid & (prob >= self.thresholds[stage])
        if stage == 1:
            index, valid = _nms(boxes, prob, valid, 0.7, self.candidates[2], reads)
            return _square(_regress(_take(boxes, index), _take(reg, index))), _take(prob, index), valid
        boxes = _regress(boxes, reg)
        index, valid = _nms(boxes, prob, valid, 0.7, self.candidates[2], reads, overlap="min")
        return _take(boxes, index), _take(prob, index), valid

    def look_again(self, faces: Sequence[Tensor], details: Sequence[Optional[Detail]], height: int, width: int
                   ) -> List[Tensor]:
        """Each image's ``faces`` (pixels of the ``height`` x ``width`` images they were found in) with those
        :attr:`second_look` finds in its ``detail`` (one per image; ``None``: no second look), after them.
        Unchanged without faces, a second look, or faces to seek below :attr:`SecondLook.reliable`."""
        from torchvision.ops import box_iou

        look = self.second_look
        if look is None:
            return list(faces)
        out = []
        for found, detail in zip(faces, details):
            tallest = float((found[:, 3] - found[:, 1]).max()) if len(found) else 0.0
            if detail is None or not len(found) or look.smallest * tallest >= look.reliable:
                out.append(found)
                continue
            image = detail(look.factor)
            sy, sx = image.shape[-2] / height, image.shape[-1] / width
            # The rows around the faces found, ``band`` times the tallest above and below.
            top = max(0, math.floor((float(found[:, 1].min()) - look.band * tallest) * sy))
            bottom = min(image.shape[-2], math.ceil((float(found[:, 3].max()) + look.band * tallest) * sy))
            sizes = (look.smallest * tallest * sy, look.largest * tallest * sy)
            more = self.detect(image[..., top:bottom, :], sizes=sizes).unpadded()[0]
            more = ((more + more.new_tensor([0, top, 0, top])) / more.new_tensor([sx, sy, sx, sy])).to(found)
            if len(more):
                more = more[box_iou(more, found).amax(1) < look.overlap]
            out.append(torch.cat([found, more]))
        return out

    def forward(self, images: Photos) -> List[Tensor]:
        """Each photo's face boxes, ``Tensor[F_i, 4]`` ``(x1, y1, x2, y2)`` in its pixels, best first."""
        if isinstance(images, Tensor) and images.dim() == 4:
            return self.detect(images).unpadded()
        out: List[Tensor] = []
        for photo in photo_list(images):
            if isinstance(photo, Image.Image):
                photo = image_to_tensor(photo)
            if not isinstance(photo, Tensor) or photo.dim() != 3:
                shown = tuple(photo.shape) if isinstance(photo, Tensor) else type(photo).__name__
                raise ValueError(f"FaceDetector takes photos as PIL images or (3, H, W) tensors, got {shown}")
            out += self.detect(photo[None]).unpadded()
        return out

    def extra_repr(self) -> str:
        return (f"min_face={self.min_face}, thresholds={self.thresholds}, factor={self.factor}, "
                f"second_look={self.second_look}")
