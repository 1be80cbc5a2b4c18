"""The official S2CNet / GAIC pre-processing, and the mapping of boxes between original pixels and
pixels of the model's input.

Official rule: scale so the short side is 256, round each side to a multiple of 32 (Python's
``round``), resize bilinearly (OpenCV ``INTER_LINEAR``, which gives uint8), divide by 256 (sic, not
255), then normalise with the ImageNet mean and std.

One departure, for extreme shapes only: the long side is capped at :data:`MAX_LONG_SIDE` (1024 = four
times the short side, so photos up to 4:1 -- panoramas included -- get the official size). Past that the
short side shrinks instead (to 32 at least), so the model's input is at most 1024 x 256 pixels whatever
the aspect ratio: with the official rule alone a 10000 x 40 photo became a 64,000 x 256 input, and the
scoring took 16-34 s and 6 GB. The candidate crops are made in the photo's own pixels, so the chosen
crop still lies inside it.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.scorer import ability
from ..ops.constants import constant
from .images import ImageLike, image_to_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The longest side of the model's input (see the module docstring): bounds time and memory per photo.
MAX_LONG_SIDE = 1024


@dataclass(frozen=True)
class Resize:
    """Sizes of one image before and after the official resize."""

    original: Tuple[int, int]  # (height, width)
    resized: Tuple[int, int]

    @property
    def scale(self) -> Tuple[float, float]:
        """(x, y) factors from original to resized pixels."""
        return self.resized[1] / self.original[1], self.resized[0] / self.original[0]

    def boxes_to_model(self, boxes: Tensor, *, snap: bool = False) -> Tensor:
        """(x1, y1, x2, y2) boxes from original to model pixels. ``snap`` floors x1, y1 and ceils x2, y2
        as the official code does for annotated crops."""
        sx, sy = self.scale
        out = boxes * constant([sx, sy, sx, sy], boxes.dtype, boxes.device)
        if snap:
            out = torch.cat([out[..., :2].floor(), out[..., 2:].ceil()], dim=-1)
        return out

    def boxes_to_original(self, boxes: Tensor) -> Tensor:
        """(x1, y1, x2, y2) boxes from model pixels back to original pixels."""
        sx, sy = self.scale
        return boxes / constant([sx, sy, sx, sy], boxes.dtype, boxes.device)


def finer(pixels: Tensor, geometry: Resize, factor: float) -> Tensor:
    """The photo of ``geometry`` (``pixels`` ``[..., 3, H, W]`` at any resolution: uint8, or float in [0, 1]) at
    ``factor`` times the model's resolution, antialiased, in the pixels' dtype and on their device (as they
    are when already that size): what a proposer's second look sees. uint8 is resized as uint8 on the CPU,
    where it is about 15 times faster than in float (a 12 MP photo: 5 ms against 80 ms) and within one
    level of the float result."""
    h, w = geometry.resized
    size = (round(h * factor), round(w * factor))
    if tuple(pixels.shape[-2:]) == size:
        return pixels
    batch = pixels if pixels.dim() == 4 else pixels[None]
    if batch.dtype == torch.uint8 and batch.device.type != "cpu":
        # No uint8 antialiased resize on other devices: in float, rounded back.
        out = F.interpolate(batch.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    else:
        out = F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out if pixels.dim() == 4 else out[0]


class OfficialPreprocess:
    """``preprocess(image) -> (tensor (3, h, w) normalised, Resize)``; ``unnormalised`` gives the resized
    RGB in [0, 1] (what object proposers take).

    ``antialias=True`` low-pass filters before shrinking (as PIL and ``torchvision.transforms.v2.Resize``
    do): not the official code's resize (OpenCV's ``INTER_LINEAR`` aliases), so official checkpoints keep
    the default ``False``; the package's FCDB-trained model is trained with it, and detectors such as the
    face proposer's need it (aliasing erases small faces).

    ``max_long_side`` caps the long side of the output (a multiple of ``multiple``, at least
    ``short_side``; :data:`MAX_LONG_SIDE` by default, see the module docstring)."""

    def __init__(self, short_side: int = 256, multiple: int = 32, mean=IMAGENET_MEAN, std=IMAGENET_STD, *,
                 antialias: bool = False, max_long_side: int = MAX_LONG_SIDE) -> None:
        if short_side < multiple:
            raise ValueError(f"short_side ({short_side}) must be at least multiple ({multiple})")
        if max_long_side < short_side or max_long_side % multiple:
            raise ValueError(f"max_long_side ({max_long_side}) must be a multiple of {multiple} and at least "
                             f"short_side ({short_side})")
        self.short_side = short_side
        self.multiple = multiple
        self.max_long_side = max_long_side
        self.antialias = bool(antialias)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        if height < 1 or width < 1:
            raise ValueError(f"image has no pixels ({height}x{width})")
        scale = min(self.short_side / min(height, width), self.max_long_side / max(height, width))
        m = self.multiple
        return max(m, round(height * scale / m) * m), max(m, round(width * scale / m) * m)

    def resize(self, image: ImageLike, *, apply_exif_orientation: bool = True,
               original: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Resize]:
        """The resized image as float values in [0, 255], rounded like OpenCV's uint8 output; a PIL image
        goes through :func:`~s2c_ops.cropping.images.image_to_tensor` first (upright, 8-bit RGB).
        ``original``: the (height, width) of the photo when ``image`` is a reduced decode of it (a JPEG
        draft); the output then has the size, and the geometry the original, of the photo's own resize."""
        pixels = image_to_tensor(image, apply_exif_orientation=apply_exif_orientation)
        resized, geometry = self.resize_batch(pixels[None].float(), original=original)
        return resized[0], geometry

    def resize_batch(self, pixels: Tensor, *, original: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Resize]:
        """The same for a (B, 3, H, W) float batch of values in [0, 255], on its device."""
        h, w = original if original is not None else pixels.shape[-2:]
        size = self.output_size(h, w)
        resized = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        # In place on interpolate's own output: a full-size temporary less (what the CPU pays most for).
        return resized.round_().clamp_(0, 255), Resize((h, w), size)

    def normalise(self, resized: Tensor) -> Tensor:
        # One new tensor, then in place: broadcasting the (3, 1, 1) mean and std into new tensors was
        # several times slower on the CPU, for the same values.
        # float32 constants, as the mean and std always were, in the images' dtype.
        mean = constant(self.mean, torch.float32, resized.device).view(3, 1, 1).to(resized.dtype)
        std = constant(self.std, torch.float32, resized.device).view(3, 1, 1).to(resized.dtype)
        return resized.div(256.0).sub_(mean).div_(std)

    def unnormalised(self, resized: Tensor) -> Tensor:
        return resized / 255.0

    @classmethod
    def for_model(cls, model) -> "OfficialPreprocess":
        """The pre-processing a scorer was made for: its ``antialias`` ability (official S2CNet configs: no)."""
        return cls(antialias=ability(model, "antialias"))

    def __call__(self, image: ImageLike) -> Tuple[Tensor, Resize]:
        resized, geometry = self.resize(image)
        return self.normalise(resized), geometry
