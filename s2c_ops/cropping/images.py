"""The one path from a photo (a file or a PIL image) to the model's pixels, used by the Cropper, ``s2c crop``,
``s2c eval`` and the data loaders, so that they all see the same pixels for the same file.

* EXIF orientation is applied first (``apply_exif_orientation``, on by default, as ``s2c crop`` does and
  as torchvision's ``decode_image(apply_exif_orientation=True)`` does on request): boxes are in pixels of
  the upright photo. A broken EXIF block leaves the photo as stored.
* Then 8-bit RGB (:func:`to_rgb`): alpha composited over white; 16-bit and 32-bit data scaled to 8 bits
  (not clipped); CMYK through its embedded ICC profile when it has one; palette and grayscale expanded.
* A photo at least four times the size the model (and the face detector's second look) needs on each
  side is made smaller before it is converted, keeping twice those pixels: a JPEG opened and not decoded
  yet (``Image.open(path)``) is decoded reduced (:func:`draft`), another PIL image is :func:`reduced`.
  ``s2c crop`` and the Cropper do this; tensors and the datasets (``s2c eval``, ``s2c train``) are taken
  in full. The resize then gives the model the size of the photo's own resize
  (``OfficialPreprocess.resize(original=...)``).
"""
import io
import math
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from .pixels import check_unit_range

ImageLike = Union[Tensor, Image.Image]
#: What a public method takes as photos: one photo, a (B, 3, H, W) batch, or a list of photos.
Photos = Union[ImageLike, Sequence[ImageLike]]

EXIF_ORIENTATION = 0x0112
TIFF_WIDTH, TIFF_LENGTH = 256, 257  # the TIFF tags of the stored width and height
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
JPEG_FORMATS = ("JPEG", "MPO")
DRAFT_MIN_FACTOR = 2  # a photo is made smaller (draft, reduce) only when that at least halves each side
DRAFT_KEEP = 2  # and keeps at least twice the pixels the resize makes (a resize that still filters)


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of ``im``; 1 when it has none or its EXIF block is broken."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
        return int(value) if value in (1, 2, 3, 4, 5, 6, 7, 8) else 1
    except Exception:  # a broken EXIF block: ignore the orientation
        return 1


def upright(im: Image.Image, *, in_place: bool = False) -> Image.Image:
    """``im`` turned as its EXIF orientation says (``ImageOps.exif_transpose``); ``im`` itself when it
    needs no turn or its EXIF block cannot be read. ``in_place`` turns a loaded image in place."""
    if exif_orientation(im) == 1:
        return im
    if in_place:
        ImageOps.exif_transpose(im, in_place=True)
        return im
    return ImageOps.exif_transpose(im)


def swaps_sides(orientation: int) -> bool:
    """Whether an EXIF orientation swaps the photo's width and height."""
    return orientation in (5, 6, 7, 8)


def turns_sideways(im: Image.Image) -> bool:
    """Whether turning ``im`` upright (:func:`upright`) swaps the width and height it reports now: its EXIF
    orientation swaps the sides and its size is still the stored one. (Pillow 11 and later open a TIFF of
    such an orientation at its upright size and turn its pixels themselves as they load them.)"""
    if not swaps_sides(exif_orientation(im)):
        return False
    tags = getattr(im, "tag_v2", None)
    if im.format == "TIFF" and tags is not None:
        return im.size == (tags.get(TIFF_WIDTH), tags.get(TIFF_LENGTH))
    return True


def _least(size: Tuple[int, int], factor: Optional[float], swapped: bool) -> Tuple[int, int]:
    """The fewest stored pixels (width, height) a reduced photo keeps: :data:`DRAFT_KEEP` times the pixels it
    will be resized to, ``factor`` (1 or more) times ``size``, the model's upright (height, width)."""
    least = max(1.0, factor or 1.0) * DRAFT_KEEP
    h, w = math.ceil(size[0] * least), math.ceil(size[1] * least)
    return (h, w) if swapped else (w, h)


def draft(im: Image.Image, size: Tuple[int, int], factor: Optional[float] = None, *, swapped: bool = False) -> bool:
    """Asks a JPEG that is not decoded yet for a reduced decode (Pillow's ``draft()``: DCT scaling by 1/2,
    1/4 or 1/8, several times faster than a full decode) that keeps at least :data:`DRAFT_KEEP` times the
    pixels it will be resized to, ``factor`` (1 or more) times ``size``, the model's (height, width), when
    that at least halves each side; whether it will. ``swapped``: the photo is stored turned (its EXIF
    orientation swaps the sides)."""
    want = drafts_to(im, size, factor, swapped=swapped)
    if want is None:
        return False
    before = im.size
    im.draft(None, want)
    return im.size != before


def drafts_to(im: Image.Image, size: Tuple[int, int], factor: Optional[float] = None, *,
              swapped: bool = False) -> Optional[Tuple[int, int]]:
    """The least stored (width, height) a :func:`draft` of ``im`` asks for, or ``None`` when it takes none."""
    if im.format not in JPEG_FORMATS:
        return None
    want = _least(size, factor, swapped)
    if im.size[0] // want[0] < DRAFT_MIN_FACTOR or im.size[1] // want[1] < DRAFT_MIN_FACTOR:
        return None
    return want


def reduced(im: Image.Image, size: Tuple[int, int], factor: Optional[float] = None, *,
            swapped: bool = False) -> Image.Image:
    """A decoded photo made smaller the same way (Pillow's ``reduce()``: means of k x k blocks, for the
    largest whole k that keeps as many pixels as a :func:`draft`), where k is 2 or more; ``im`` itself
    otherwise, and for modes other than RGB, L and CMYK."""
    if im.mode not in ("RGB", "L", "CMYK"):
        return im
    want = _least(size, factor, swapped)
    k = min(im.size[0] // want[0], im.size[1] // want[1])
    return im.reduce(k) if k >= DRAFT_MIN_FACTOR else im


def reopened(image: Image.Image) -> Optional[Image.Image]:
    """A copy of ``image`` opened again from its file (header only), when ``image`` is a JPEG that
    ``Image.open`` read from a path and that is not decoded yet, so that a :func:`draft` leaves the caller's
    image as it is; ``None`` otherwise, or when the file no longer holds that image."""
    name = getattr(image, "filename", None)
    if image.format not in JPEG_FORMATS or not getattr(image, "tile", None) or not isinstance(name, (str, os.PathLike)):
        return None
    if not name or not os.path.isfile(name):
        return None
    try:
        copy = Image.open(name)
    except (OSError, SyntaxError, ValueError):
        return None
    if (copy.format, copy.size, copy.mode) != (image.format, image.size, image.mode):
        copy.close()
        return None
    return copy


class NoPixels(ValueError):
    """An image whose values are all missing (a float image of NaN only)."""


def _to_8bit_gray(im: Image.Image) -> Image.Image:
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = (a.astype(np.uint32) * 255 + 32767) // 65535
    elif im.mode == "F":
        if a.size and np.isnan(a).all():
            raise NoPixels("the image holds only NaN values: there are no pixels to crop")
        a = np.nan_to_num(a.astype(np.float64))
        hi = float(a.max()) if a.size else 0.0
        a = np.clip(a * (255.0 if hi <= 1.0 else 1.0), 0, 255).round()
    else:  # "I": 8-bit or 16-bit data in 32-bit ints, else stretched
        a = a.astype(np.int64)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi <= 255:
            pass
        elif lo >= 0 and hi <= 65535:
            a = (a * 255 + 32767) // 65535
        else:
            a = (a - lo) * 255 // max(1, hi - lo)
    return Image.fromarray(a.astype(np.uint8), "L")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            return ImageCms.profileToProfile(im, io.BytesIO(icc), ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # no littlecms, or a profile it cannot use: the plain conversion
            pass
    return im.convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB for the model: alpha composited over white, 16-bit and 32-bit data scaled (not
    clipped), CMYK through its ICC profile when there is one."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_8bit_gray(im).convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def image_to_tensor(image: ImageLike, *, apply_exif_orientation: bool = True) -> Tensor:
    """A (3, H, W) uint8 RGB tensor from a PIL image (upright unless ``apply_exif_orientation=False``,
    then :func:`to_rgb`) or from a (3, H, W) tensor, uint8 or float in [0, 1] (taken as it is; other
    float values raise ``ValueError``, see :mod:`~s2c_ops.cropping.pixels`)."""
    if isinstance(image, Image.Image):
        if apply_exif_orientation:
            image = upright(image)
        return torch.from_numpy(np.array(to_rgb(image))).permute(2, 0, 1)
    if not isinstance(image, Tensor):
        raise TypeError(f"expected a PIL image or a (3, H, W) tensor, got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    if image.device.type == "meta":
        raise ValueError("a photo on the meta device has no pixels to crop")
    if image.dtype == torch.uint8:
        return image
    if image.is_floating_point():
        check_unit_range(image)
        return (image.clamp(0, 1) * 255).round().to(torch.uint8)
    raise TypeError(f"expected a uint8 or floating-point image tensor, got {image.dtype}")


def photo_list(photos: Photos) -> List[ImageLike]:
    """The photos of a call one by one: a (B, 3, H, W) tensor's images, a list's items, or the one photo."""
    if isinstance(photos, Tensor) and photos.dim() == 4:
        return list(photos)
    return list(photos) if isinstance(photos, (list, tuple)) else [photos]


class ImageTooLarge(ValueError):
    """An image past Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``)."""


def check_pixels(height: int, width: int) -> None:
    """Raises :class:`ImageTooLarge` for an image past Pillow's decompression-bomb limit (checked from the
    header, before any pixel is decoded; Pillow itself only warns below twice the limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels, past Pillow's decompression-bomb limit "
            f"of {int(limit)} (PIL.Image.MAX_IMAGE_PIXELS)"
        )


def load_image(path, *, apply_exif_orientation: bool = True) -> Image.Image:
    """The photo at ``path`` decoded, upright unless ``apply_exif_orientation=False``, in its own mode
    (:func:`image_to_tensor` or :func:`to_rgb` make the model's RGB). Raises :class:`ImageTooLarge` past
    the decompression-bomb limit and Pillow's errors (``OSError`` and its kin) for unreadable files."""
    with Image.open(path) as im:
        check_pixels(im.height, im.width)
        im.load()
        out = upright(im) if apply_exif_orientation else im
        return out.copy() if out is im else out  # closing the file leaves ``im`` unusable
