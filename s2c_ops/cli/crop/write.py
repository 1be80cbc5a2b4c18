"""Writing ``s2c crop``'s outputs: crops in the input's format (with its metadata and quality), ``--size``
resizing and ``--show`` previews, each file atomically (:func:`s2c_ops.files.write_atomic`)."""
import errno
import os
from typing import List, Optional, Tuple

import torch
from PIL import Image

from ...cropping.candidates import Ratio, pixel_crops
from ...cropping.images import EXIF_ORIENTATION, to_rgb
from ...files import image_writer, write_atomic as write_file_atomic
from .args import Job, output_format
from .decode import JPEG_FORMATS, InputError, decode_full, describe
from .score import Outcome

SHOW_MAX_SIDE = 1280  # --show previews are scaled down to this long side
# Write failures that no other output on the same disk or folder escapes: the run stops after them.
UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def unwritable(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in UNWRITABLE


def os_error_text(error: OSError) -> str:
    """"No space left on device [ENOSPC]": the reason without the (temporary) file name."""
    name = errno.errorcode.get(error.errno, "")
    return (error.strerror or str(error)) + (f" [{name}]" if name else "")


#: The modes a format's writer takes from a crop of another format (others are made RGB first).
_KEEPS_MODE = {"JPEG": {"1", "L", "RGB", "CMYK"}, "PNG": {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}}


def _for_format(crop: Image.Image, fmt: str) -> Image.Image:
    """``crop`` in a mode the ``fmt`` writer takes, for a crop whose input was of another format."""
    keeps = _KEEPS_MODE.get(fmt, {"L", "RGB"})
    return crop if crop.mode in keeps and "transparency" not in crop.info else to_rgb(crop)


def _exif_upright(im: Image.Image) -> Optional[bytes]:
    """``im``'s EXIF block, without an orientation other than 1: the pixels are upright (a valid one was
    taken out as they were turned; one out of 1..8 turned nothing and must not reach a viewer either)."""
    raw = im.info.get("exif")
    try:
        exif = im.getexif() if raw else None
        if exif is None or exif.get(EXIF_ORIENTATION, 1) == 1:
            return raw
        del exif[EXIF_ORIENTATION]
        return exif.tobytes()
    except Exception:  # a block Pillow cannot read is written as it came
        return raw


def _save_options(im: Image.Image, fmt: str, params: dict) -> dict:
    opts = {}
    if im.info.get("icc_profile"):
        opts["icc_profile"] = im.info["icc_profile"]
    exif = _exif_upright(im)
    if exif:
        opts["exif"] = exif
    if im.info.get("dpi"):
        opts["dpi"] = im.info["dpi"]
    if fmt == "JPEG":
        opts.update(params)
        if im.info.get("comment"):
            opts["comment"] = im.info["comment"]
        if im.info.get("xmp"):
            opts["xmp"] = im.info["xmp"]
    elif fmt == "PNG":
        names = [k for k in params.get("png_text", []) if isinstance(im.info.get(k), (str, bytes))]
        if names:
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            for k in names:
                v = im.info[k]
                info.add_itxt(k, v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
            opts["pnginfo"] = info
    elif fmt == "WEBP":
        opts["quality"] = 95
    elif fmt == "TIFF" and im.info.get("compression") not in (None, "raw"):
        opts["compression"] = im.info["compression"]
    return opts


def write_atomic(path: str, writer, job: Job) -> None:
    """:func:`s2c_ops.files.write_atomic`, an existing output being this input's error."""
    if job.leftovers is not None:
        job.leftovers.remove(path)
    try:
        write_file_atomic(path, writer, overwrite=job.overwrite)
    except FileExistsError:
        raise InputError(f"output {path} exists (pass --overwrite to replace it)") from None


def _resizable(im: Image.Image) -> Image.Image:
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "PA":
        return im.convert("RGBA")
    if im.mode == "1":
        return im.convert("L")
    return im


def _pixel_boxes(boxes, ratio: Ratio, height: int, width: int) -> List[Tuple[int, int, int, int]]:
    """Pillow's crop boxes of ``boxes`` (:func:`~s2c_ops.cropping.candidates.pixel_crops`, as AestheticCrop cuts)."""
    crops = pixel_crops(torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4), ratio, height, width)
    return [(x0, y0, x0 + w, y0 + h) for x0, y0, w, h in crops.tolist()]


def _draw_show(image: Image.Image, boxes, scores) -> Image.Image:
    from PIL import ImageDraw, ImageFont

    preview = to_rgb(image)
    scale = min(1.0, SHOW_MAX_SIDE / max(preview.size))
    if scale < 1.0:
        preview = preview.resize((max(1, round(preview.width * scale)), max(1, round(preview.height * scale))),
                                 Image.Resampling.BILINEAR, reducing_gap=2.0)
    else:
        preview = preview.copy()
    draw = ImageDraw.Draw(preview)
    width = max(2, round(max(preview.size) / 250))
    try:
        font = ImageFont.load_default(size=max(10, width * 6))
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    for k in reversed(range(len(boxes))):
        x1, y1, x2, y2 = (float(v) * scale for v in boxes[k])
        colour = (255, 40, 40) if k == 0 else (255, 220, 0)
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=width if k == 0 else max(1, width // 2))
        label, at = f"{k + 1}: {float(scores[k]):.3f}", (x1 + width + 2, y1 + width + 2)
        draw.rectangle(draw.textbbox(at, label, font=font), fill=(0, 0, 0))
        draw.text(at, label, fill=colour, font=font)
    return preview


def _write_ratio(o: Outcome, job: Job, ratio, boxes, scores, image: Image.Image, out_fmt: str,
                 params: Optional[dict]) -> None:
    """Writes one ratio's crops (and preview) in ``out_fmt``, with the source's writing ``params`` (None:
    the source is of another format, the crops are converted to one this format holds); on failure
    removes those already written and records the ratio's error (the file and the reason)."""
    paths = job.crop_paths(o.entry, ratio, len(boxes))
    written: List[str] = []
    path = None
    try:
        for box, path in zip(_pixel_boxes(boxes, ratio.value, image.height, image.width), paths):
            crop = image.crop(box)
            if job.size is not None and (crop.height, crop.width) != job.size:
                crop = _resizable(crop).resize(job.size[::-1], Image.Resampling.LANCZOS)
            if params is None:
                crop = _for_format(crop, out_fmt)
            opts = _save_options(crop, out_fmt, params or {})
            write_atomic(path, image_writer(crop, format=out_fmt, **opts), job)
            written.append(path)
        o.outputs[ratio.text] = paths
        if job.show:
            path = job.show_path(o.entry, ratio)
            preview = _draw_show(image, boxes, scores)
            write_atomic(path, image_writer(preview, format="PNG"), job)
            o.shows[ratio.text] = path
    except Exception as e:  # this ratio fails as a whole: no outputs of it are left behind
        for done in written:
            try:
                os.unlink(done)
            except OSError:
                pass
        o.outputs.pop(ratio.text, None)
        if isinstance(e, OSError):  # named by the output, not by its temporary file
            reason = f"cannot write {path}: {os_error_text(e)}"
            if unwritable(e):
                o.unwritable = o.unwritable or reason
        else:
            reason = f"cannot write: {e if isinstance(e, InputError) else f'{type(e).__name__}: {e}'}"
        o.results[ratio.text] = f"ratio {ratio.text}: {reason}".splitlines()[0]


def write_outcome(o: Outcome, job: Job) -> None:
    """Writes the crops (and previews) of one scored input; failures become per-ratio errors."""
    ok = {t: r for t, r in o.results.items() if isinstance(r, tuple)}
    if job.out is None or o.error or not ok:
        return
    d = o.decoded
    try:
        if d.image is not None:
            image, params, fmt = d.image, d.params, d.format
        else:
            image, params, fmt = decode_full(o.entry.path)
            if image.size != (d.width, d.height):
                raise InputError(f"the image changed while it was processed ({d.width}x{d.height} -> {image.width}x{image.height})")
    except Exception as e:
        for text in ok:
            o.results[text] = f"ratio {text}: cannot write: {describe(e)}"
        return
    try:
        out_fmt = output_format(o.entry.path)[0]
        same = out_fmt == ("JPEG" if fmt in JPEG_FORMATS else fmt)
        for r in job.ratios:
            if r.text in ok:
                _write_ratio(o, job, r, *ok[r.text], image, out_fmt, params if same else None)
    finally:
        image.close()
        if o.decoded is not None:
            o.decoded.image = None


def safe_write(o: Outcome, job: Job) -> Outcome:
    try:
        write_outcome(o, job)
    except Exception as e:  # a bug or an unexpected failure: this input fails, the run goes on
        o.error = f"cannot write: {type(e).__name__}: {e}".splitlines()[0]
    return o
