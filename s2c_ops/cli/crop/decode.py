"""Opening and decoding ``s2c crop``'s inputs: for the model (the package's one image path,
:mod:`s2c_ops.cropping.images`, and :class:`~s2c_ops.cropping.transforms.OfficialPreprocess`'s resize; a
large photo decoded reduced, as the Cropper does: a JPEG ``draft()``, else ``reduce()``) and in full for
writing crops, with the source's writing options."""
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional, Tuple

import torch
from PIL import Image, UnidentifiedImageError

from ...cropping.images import (JPEG_FORMATS, ImageTooLarge, NoPixels, check_pixels, draft, image_to_tensor,
                                reduced, turns_sideways, upright)
from ...cropping.transforms import OfficialPreprocess, Resize, finer

MIN_SIDE = 32  # smallest image side accepted, in pixels
USE_DRAFT = True  # large photos reduced for the model's input: JPEG draft, else reduce() (benchmarks compare)


class InputError(Exception):
    """A problem with one input, reported as its one-line outcome."""


@dataclass
class Decoded:
    width: int  # upright, full resolution
    height: int
    pixels: torch.Tensor  # (3, h, w) uint8: the model's input (the official resize of the upright RGB image)
    geometry: Resize  # full resolution -> model input
    format: Optional[str]
    image: Optional[Image.Image] = None  # the upright full-resolution image, when kept for writing
    params: dict = field(default_factory=dict)  # how to write crops in the source's format
    # (1, 3, h, w) uint8: the photo at the second look's resolution (transforms.finer), made from the image the
    # model's pixels came from (full or drafted), only for a proposer that asks for details (Cropper._detail).
    detail: Optional[torch.Tensor] = None


def describe(error: Exception) -> str:
    """A reading or decoding failure in words."""
    if isinstance(error, (InputError, ImageTooLarge, NoPixels)):
        return str(error)
    if isinstance(error, Image.DecompressionBombError):
        return f"past Pillow's decompression-bomb limit: {error}"
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read (cannot identify image file)"
    if isinstance(error, (OSError, SyntaxError, EOFError, ValueError)) and not isinstance(error, FileNotFoundError):
        text = str(error) or type(error).__name__
        if isinstance(error, PermissionError):
            return f"cannot read: {text}"
        return f"corrupt or truncated image: {text}"
    return f"{type(error).__name__}: {error}"


def _jpeg_params(im: Image.Image) -> dict:
    """JPEG writing options that keep the source's quality: its quantisation tables and subsampling."""
    params = {}
    tables = getattr(im, "quantization", None)
    if tables:
        params["qtables"] = {k: list(v) for k, v in tables.items()}
        try:
            from PIL import JpegImagePlugin

            sampling = JpegImagePlugin.get_sampling(im)
            if sampling != -1:
                params["subsampling"] = sampling
        except Exception:
            pass
    else:
        params["quality"] = 95
    if im.info.get("progressive") or im.info.get("progression"):
        params["progressive"] = True
    return params


def _png_text(im: Image.Image) -> dict:
    """A PNG's text chunks (names only: the values are read from the crop's info, which exif_transpose
    may have updated)."""
    text = getattr(im, "text", None) if im.format == "PNG" else None
    return {"png_text": [k for k, v in text.items() if isinstance(v, str)]} if text else {}


_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]


@contextmanager
def _opened(path: str) -> Iterator[Tuple[Image.Image, int, int, bool]]:
    """Opens ``path`` (header only): the image, its upright width and height, and whether turning it upright
    swaps its sides (:func:`~s2c_ops.cropping.images.turns_sideways`). Only
    a regular file is read, and opening never waits (a FIFO or a device is an :class:`InputError`, not a
    hang); the file is closed on leaving, so the image must be loaded inside."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise InputError(f"not a regular file ({kind})")
        im = Image.open(f)
        try:
            check_pixels(im.height, im.width)
            sideways = turns_sideways(im)
            w, h = im.size
            if sideways:
                w, h = h, w
            yield im, w, h, sideways
        except BaseException:
            im.close()
            raise


def decode(path: str, preprocess: OfficialPreprocess, keep_full: bool, use_draft: bool,
           detail: Optional[float] = None) -> Decoded:
    """Decodes ``path`` for the model (the package's one image path and ``preprocess``'s resize) and,
    with ``keep_full``, keeps the upright full image for writing when the model's decode was a full one.
    ``detail``: the proposer's :attr:`~s2c_ops.cropping.proposals.Proposer.detail_factor`; with one, a draft
    keeps at least that many times the model's pixels, and the photo at that resolution is kept as ``detail``."""
    with _opened(path) as (im, width, height, sideways):
        if min(width, height) < MIN_SIDE:
            raise InputError(f"image is {width}x{height} px; both sides must be at least {MIN_SIDE} px")
        h_m, w_m = preprocess.output_size(height, width)
        fmt = im.format
        params = _jpeg_params(im) if fmt in JPEG_FORMATS else {}
        drafted = use_draft and draft(im, (h_m, w_m), detail, swapped=sideways)
        im.load()
        params.update(_png_text(im))
    try:
        upright(im, in_place=True)
        pixels = image_to_tensor(reduced(im, (h_m, w_m), detail) if use_draft else im)
        resized, geometry = preprocess.resize(pixels, original=(height, width))
        keep = keep_full and not drafted
        if not keep:
            im.close()
        return Decoded(width, height, resized.to(torch.uint8), geometry, fmt, im if keep else None, params,
                       detail=None if detail is None else finer(pixels[None], geometry, detail))
    except BaseException:
        im.close()
        raise


def decode_full(path: str) -> Tuple[Image.Image, dict, Optional[str]]:
    """The upright full-resolution image (for writing crops), its writing options and format."""
    with _opened(path) as (im, _, _, _):
        params = _jpeg_params(im) if im.format in JPEG_FORMATS else {}
        fmt = im.format
        im.load()
        params.update(_png_text(im))
    try:
        upright(im, in_place=True)
        return im, params, fmt
    except BaseException:
        im.close()
        raise


def try_decode(path: str, preprocess: OfficialPreprocess, keep_full: bool, use_draft: bool,
               detail: Optional[float] = None) -> Tuple[Optional[Decoded], Optional[str]]:
    """:func:`decode`, a failure being ``(None, one line)`` instead of an exception."""
    try:
        return decode(path, preprocess, keep_full, use_draft, detail), None
    except InputError as e:
        return None, str(e)
    except MemoryError:
        return None, "not enough memory to decode this image"
    except Exception as e:
        return None, (describe(e).splitlines() or [type(e).__name__])[0]
