"""``s2c crop``: the best crops of photos for given aspect ratios, from the command line.

    s2c crop INPUT... --ratio R [--ratio R2 ...] [--size WxH] [--top-k K]
             [--official CKPT --config C | --weights RUN] [--boxes FILE | --proposer NAME]
             [--out DIR] [--json FILE] [--show] [--device D] [--batch-size N] [--workers N] [--overwrite]

Also ``python -m s2c_ops.cli crop ...`` and, sharded over processes,
``torchrun --nproc_per_node=N -m s2c_ops.cli crop ...``. The help text (``EPILOG`` below) is the
user documentation: inputs, output names, the JSON Lines record, what is printed, exit status.

Per file the pipeline is: open (header only) -> checks (decompression-bomb limit, smallest side) ->
decode for the model (JPEG: ``draft()`` at a reduced size when the image is at least twice the
model's input size) -> EXIF orientation -> RGB -> the official resize -> candidates of each ratio in
the upright full-resolution pixels -> one batched scoring call per group of same-size images ->
crops cut from the full-resolution upright image (decoded again in full when the model saw a draft)
and written atomically in the input's format. Decoding and writing run on ``--workers`` threads
(Pillow releases the GIL) while the main thread scores; records come out in input order.
"""
import argparse
import glob
import json
import math
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image, UnidentifiedImageError

from ..files import write_atomic as write_file_atomic
from ..cropping.candidates import parse_ratio, ratio_anchors
from ..cropping.images import ImageTooLarge, check_pixels, exif_orientation, image_to_tensor, to_rgb, upright
from ..cropping.transforms import OfficialPreprocess, Resize
from ..distributed import init_process_group, rank_device, torchrun_ranks
from ..models.config import OFFICIAL

MIN_SIDE = 32  # smallest image side accepted, in pixels
SHOW_MAX_SIDE = 1280  # --show previews are scaled down to this long side
USE_DRAFT = True  # JPEG draft decoding for the model's input (benchmarks switch it off to compare)
DRAFT_MIN_FACTOR = 2  # draft only when it at least halves each side
JPEG_FORMATS = ("JPEG", "MPO")

EPILOG = """\
inputs:
  Files, folders (searched recursively for files with an image extension Pillow knows; hidden
  files and the --out folder are skipped) and glob patterns (quoted, ** allowed). A file listed
  twice is processed once. EXIF orientation is applied before anything else: boxes and sizes are
  those of the upright image. Images need both sides >= 32 px and at most Image.MAX_IMAGE_PIXELS
  pixels (Pillow's decompression-bomb limit). CMYK, grayscale, palette, 16-bit and alpha images are
  converted to 8-bit RGB for the model (alpha over white, 16-bit scaled, CMYK through its ICC
  profile when it has one); the crops keep the original pixels and mode.

ratios:
  "16:9", "16/9" or "1.778" (width / height, positive and finite). Repeat --ratio for several;
  all ratios of an image are scored in one model call.

outputs (with --out DIR):
  DIR/<stem>_<ratio>.<ext>, the ratio written with "x" ("16:9" -> 16x9, "4/3" -> 4x3, "1.5" -> 1.5);
  with --top-k K > 1: DIR/<stem>_<ratio>_<rank>.<ext>, rank 1 the best. Files found in a folder
  INPUT keep their sub-folder below DIR. Crops are cut from the full-resolution upright image
  (box corners rounded to whole pixels) and written in the input's format and extension (MPO as
  JPEG; a format Pillow cannot write, or an extension that does not match the content, as the
  format's own extension, PNG when Pillow cannot write it): JPEG with the source's quantisation
  tables and chroma subsampling (its quality), ICC profile, EXIF (orientation removed, the pixels are
  upright), DPI and comment; PNG with its mode (alpha, palette, 16-bit), ICC profile, EXIF and text.
  --size WxH resizes every crop to exactly W x H pixels (Lanczos); when W/H differs from a ratio by
  more than 1% the crop is stretched to it (a note says so at the start). --show also writes
  DIR/<stem>_<ratio>_show.png: the upright image (long side <= 1280 px) with the top-k boxes drawn,
  the best in red. Every file is written to a temporary file in the same folder and renamed into
  place; an existing output is an error for that input unless --overwrite is given. Without --out
  nothing but the records is written (--show needs --out).

records (JSON Lines, one per input and ratio, in input order):
  {"file": "photos/a.jpg", "status": "ok", "width": 4032, "height": 3024, "ratio": 1.7778,
   "ratio_text": "16:9", "boxes": [[x1, y1, x2, y2], ...], "scores": [...], "outputs": [...],
   "show": null, "model": "...", "proposer": "..."}
  boxes: the top-k crops, best first, in pixels of the upright full-resolution image (floats, x2/y2
  exclusive); outputs: the files written for them (empty without --out); show: the preview or null.
  A failure: {"file": ..., "status": "error", "ratio": ..., "ratio_text": ..., "error": "one line",
  "model": ..., "proposer": ..., and "width"/"height" when known}. A file that cannot be read gets
  an error record for each ratio; a ratio the image cannot hold fails alone.
  --json FILE writes all records to FILE, atomically when the run ends (under torchrun each rank
  writes FILE.rank<r> and rank 0 merges them into FILE in input order, one record per input and
  ratio, then removes the parts). Without --json the records go to stdout when stdout is not a
  terminal (one line per record, flushed), and nowhere when it is.

messages (stderr):
  On a terminal: a progress bar and one line per input ("ok FILE: 16:9 -> DIR/a_16x9.jpg" or
  "error FILE: reason"), and a summary. Otherwise quiet: only one "error FILE: reason" line per
  failed input (and a count at the end when any failed).

torchrun:
  torchrun --nproc_per_node=N -m s2c_ops.cli crop ... gives rank r the inputs r, r+N, r+2N, ...
  (of the de-duplicated list, in order); CUDA ranks use cuda:LOCAL_RANK. Ranks agree on the exit
  status. Use --json to get one merged record file.

--boxes FILE:
  A JSON object mapping an input to its object boxes, [[x1, y1, x2, y2], ...] in pixels of the
  upright image, best first (the model takes the first bbox_num, whole-image boxes fill up the
  rest; [] for none). Keys are matched against the file as written in the records, then its
  absolute path, then its base name (when no other key has that base name). An input with no
  entry fails.

--weights RUN:
  A .safetensors file written by S2CNet.save (or by GeometryPrior.save), or a folder holding
  model.safetensors.

exit status: 0 when every input and ratio succeeded, 1 when any failed, 2 for usage errors.
"""


# ---------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RatioSpec:
    text: str  # as given, stripped
    value: float

    @property
    def tag(self) -> str:
        """The ratio in file names: "16:9" -> "16x9", "4/3" -> "4x3", "1.5" -> "1.5"."""
        return "".join(self.text.split()).replace(":", "x").replace("/", "x")


def ratio_arg(text: str) -> RatioSpec:
    try:
        value = parse_ratio(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return RatioSpec(text.strip(), value)


def size_arg(text: str) -> Tuple[int, int]:
    parts = text.strip().lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected WxH in whole pixels, e.g. 1280x720") from None
    if not (0 < w <= 65500 and 0 < h <= 65500):
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: width and height must be 1..65500 px")
    return w, h


def _int_arg(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``crop`` (and its options) on the ``s2c`` sub-command parsers."""
    from ..cropping.proposals import available

    p = subparsers.add_parser(
        "crop",
        help="best crops of photos for aspect ratios (files, folders, globs)",
        description="Finds the best crops of each input for each --ratio and writes the crops, "
        "a JSON Lines record per input and ratio, and optionally previews.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or glob patterns")
    p.add_argument("--ratio", action="append", required=True, type=ratio_arg, metavar="R",
                   help="aspect ratio width:height, width/height or a number; repeat for several")
    p.add_argument("--size", type=size_arg, metavar="WxH", help="resize each crop to exactly W x H pixels")
    p.add_argument("--top-k", type=_int_arg(1), default=1, metavar="K", help="best K crops per ratio (default 1)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--official", metavar="CKPT", help="an official S2CNet checkpoint (needs --config)")
    which.add_argument("--weights", metavar="RUN", help="weights saved by this package (file or folder)")
    p.add_argument("--config", choices=sorted(OFFICIAL), help="official config of --official")
    objects = p.add_mutually_exclusive_group()
    objects.add_argument("--boxes", metavar="FILE", help="JSON object boxes per input (see below)")
    objects.add_argument("--proposer", choices=available(), help="object-box proposer (default: faces, then salient regions)")
    p.add_argument("--out", metavar="DIR", help="write the crops here (created if missing)")
    p.add_argument("--json", metavar="FILE", help="write the JSON Lines records here")
    p.add_argument("--show", action="store_true", help="also write a PNG preview with the top-k boxes (needs --out)")
    p.add_argument("--device", help="torch device for the model (default: cuda when available, else cpu)")
    p.add_argument("--batch-size", type=_int_arg(1), default=16, metavar="N", help="images per model call (default 16)")
    p.add_argument("--workers", type=_int_arg(0), default=min(4, os.cpu_count() or 1), metavar="N",
                   help="decode/write threads; 0 does everything in the main thread (default min(4, CPUs))")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run, crop_parser=p)
    return p


# ---------------------------------------------------------------------------------------------------
# Inputs and output names
# ---------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One input file (or an input argument that failed to name any)."""

    file: str  # as shown in records and messages
    path: Optional[str] = None  # the file to open; None for a failed argument
    sub: str = ""  # sub-folder below --out (files found in a folder input)
    error: Optional[str] = None


def _image_extensions() -> set:
    Image.init()
    return {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _inside(path: str, folder: Optional[str]) -> bool:
    if folder is None:
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: str, skip: Optional[str], extensions: set) -> List[Tuple[str, str]]:
    """(path, sub-folder relative to ``folder``) of the image files below ``folder``, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(os.path.join(root, d), skip))
        for name in sorted(files):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                continue
            path = os.path.join(root, name)
            found.append((path, os.path.relpath(root, folder) if root != folder else ""))
    return found


def expand_inputs(inputs: Sequence[str], skip: Optional[str] = None) -> Tuple[List[Entry], List[str]]:
    """The input list, de-duplicated, in order; and notes (empty folders)."""
    extensions = _image_extensions()
    entries: List[Entry] = []
    notes: List[str] = []
    seen = set()

    def add(entry: Entry, key: str) -> None:
        if key not in seen:
            seen.add(key)
            entries.append(entry)

    for arg in inputs:
        if os.path.isdir(arg):
            found = _walk(arg, skip, extensions)
            if not found:
                notes.append(f"no image files in folder {arg}")
            for path, sub in found:
                add(Entry(path, path, sub), os.path.realpath(path))
        elif os.path.exists(arg):
            add(Entry(arg, arg), os.path.realpath(arg))
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            files = []
            for m in matches:
                if os.path.isdir(m):
                    files.extend(p for p, _ in _walk(m, skip, extensions))
                elif not _inside(m, skip):
                    files.append(m)
            if not files:
                add(Entry(arg, error="no file matches this pattern"), "pattern:" + arg)
            for path in files:
                add(Entry(path, path), os.path.realpath(path))
        else:
            add(Entry(arg, error="no such file or folder"), "missing:" + arg)
    return entries, notes


def _output_format(source_format: Optional[str], path: str) -> Tuple[str, str]:
    """(Pillow format, extension) the crops of a ``source_format`` file named ``path`` are written in."""
    ext = os.path.splitext(path)[1]
    fmt = "JPEG" if source_format in JPEG_FORMATS else source_format
    Image.init()
    if fmt not in Image.SAVE:
        return "PNG", ".png"
    own = [e for e, f in Image.registered_extensions().items() if f == fmt]
    if ext.lower() in own:
        return fmt, ext
    preferred = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
    return fmt, preferred.get(fmt, own[0] if own else ".img")


@dataclass
class Job:
    """What the run writes: settings shared by all inputs."""

    ratios: List[RatioSpec]
    top_k: int
    out: Optional[str]
    size: Optional[Tuple[int, int]]
    show: bool
    overwrite: bool

    def crop_paths(self, entry: Entry, ratio: RatioSpec, ext: str, count: int) -> List[str]:
        stem = os.path.splitext(os.path.basename(entry.path or entry.file))[0]
        base = os.path.join(self.out, entry.sub, f"{stem}_{ratio.tag}")
        if self.top_k == 1:
            return [base + ext][:count]
        return [f"{base}_{k + 1}{ext}" for k in range(count)]

    def show_path(self, entry: Entry, ratio: RatioSpec) -> str:
        stem = os.path.splitext(os.path.basename(entry.path or entry.file))[0]
        return os.path.join(self.out, entry.sub, f"{stem}_{ratio.tag}_show.png")

    def planned_paths(self, entry: Entry) -> List[str]:
        """The outputs an input would get, assuming its extension names its format."""
        ext = os.path.splitext(entry.path or "")[1]
        paths = []
        for ratio in self.ratios:
            paths += self.crop_paths(entry, ratio, ext, self.top_k)
            if self.show:
                paths.append(self.show_path(entry, ratio))
        return paths


def check_clashes(entries: List[Entry], job: Job) -> None:
    """Marks inputs whose outputs would have the names of an earlier input's. Every rank runs this on
    the whole list, so the outcome does not depend on sharding."""
    if job.out is None:
        return
    owner: Dict[str, str] = {}
    for entry in entries:
        if entry.error:
            continue
        paths = job.planned_paths(entry)
        keys = [os.path.normcase(os.path.abspath(p)) for p in paths]
        clash = next((owner[k] for k in keys if k in owner), None)
        if clash is not None:
            entry.error = f"its outputs would have the same names as those of {clash}; process them separately"
            continue
        for k in keys:
            owner[k] = entry.file


def check_existing(entries: List[Entry], job: Job) -> None:
    """Without --overwrite, marks inputs (of this rank) that already have an output, before any work."""
    if job.out is None or job.overwrite:
        return
    for entry in entries:
        if entry.error:
            continue
        existing = next((p for p in job.planned_paths(entry) if os.path.exists(p)), None)
        if existing is not None:
            entry.error = f"output {existing} exists (pass --overwrite to replace it)"


# ---------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------
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


def _describe(error: Exception) -> str:
    if isinstance(error, (InputError, ImageTooLarge)):
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


def _open(path: str) -> Tuple[Image.Image, int, int, int]:
    """Opens ``path`` (header only): the image, its upright width and height, its EXIF orientation."""
    im = Image.open(path)
    try:
        check_pixels(*im.size)
        orientation = exif_orientation(im)
        w, h = im.size
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        return im, w, h, orientation
    except BaseException:
        im.close()
        raise


def decode(path: str, preprocess: OfficialPreprocess, keep_full: bool, use_draft: bool) -> Decoded:
    """Decodes ``path`` for the model (the package's one image path and ``preprocess``'s resize) and,
    with ``keep_full``, keeps the upright full image for writing when the model's decode was a full one."""
    im, width, height, orientation = _open(path)
    try:
        if min(width, height) < MIN_SIDE:
            raise InputError(f"image is {width}x{height} px; both sides must be at least {MIN_SIDE} px")
        h_m, w_m = preprocess.output_size(height, width)
        fmt = im.format
        params = _jpeg_params(im) if fmt in JPEG_FORMATS else {}
        drafted = False
        if use_draft and fmt in JPEG_FORMATS:
            want = (h_m, w_m) if orientation in (5, 6, 7, 8) else (w_m, h_m)  # stored orientation (w, h)
            if im.size[0] // want[0] >= DRAFT_MIN_FACTOR and im.size[1] // want[1] >= DRAFT_MIN_FACTOR:
                before = im.size
                im.draft(None, want)
                drafted = im.size != before
        im.load()
        params.update(_png_text(im))
        upright(im, in_place=True)
        resized, _ = preprocess.resize(image_to_tensor(im))
        keep = keep_full and not drafted
        decoded = Decoded(width, height, resized.to(torch.uint8), Resize((height, width), (h_m, w_m)), fmt,
                          im if keep else None, params)
        if not keep:
            im.close()
        return decoded
    except BaseException:
        im.close()
        raise


def decode_full(path: str) -> Tuple[Image.Image, dict, Optional[str]]:
    """The upright full-resolution image (for writing crops), its writing options and format."""
    im, _, _, _ = _open(path)
    try:
        params = _jpeg_params(im) if im.format in JPEG_FORMATS else {}
        fmt = im.format
        im.load()
        params.update(_png_text(im))
        upright(im, in_place=True)
        return im, params, fmt
    except BaseException:
        im.close()
        raise


# ---------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One input on its way through: decoded pixels, then per ratio text either ``(boxes, scores)``
    or an error message, then the files written."""

    entry: Entry
    decoded: Optional[Decoded] = None
    error: Optional[str] = None  # the whole input failed
    results: Dict[str, tuple] = field(default_factory=dict)  # ratio text -> (boxes, scores) or error str
    outputs: Dict[str, List[str]] = field(default_factory=dict)
    shows: Dict[str, str] = field(default_factory=dict)


@torch.no_grad()
def score_outcomes(cropper, outcomes: List[Outcome], job: Job, given: Optional["BoxesFile"]) -> None:
    """Scores the decoded inputs of ``outcomes`` (:meth:`Cropper.score_images`: one call per group of
    same-size model inputs); when the model fails, every input of this batch fails with its message."""
    work = []  # (outcome, ok ratio specs, candidates, object boxes)
    for o in outcomes:
        if o.error or o.decoded is None:
            continue
        d = o.decoded
        objects = None
        if given is not None:
            objects = given.lookup(o.entry)
            if isinstance(objects, str):
                o.error = objects
                continue
        specs, cands = [], []
        for r in job.ratios:
            try:
                cands.append(ratio_anchors(d.height, d.width, r.value))
                specs.append(r)
            except ValueError as e:
                o.results[r.text] = f"ratio {r.text}: {e}"
        if specs:
            work.append((o, specs, cands, objects))
    if not work:
        return
    try:
        scores = cropper.score_images([o.decoded.pixels for o, *_ in work], [o.decoded.geometry for o, *_ in work],
                                      [torch.cat(c) for _, _, c, _ in work],
                                      None if given is None else [objs for *_, objs in work])
    except Exception as e:  # the model failed (e.g. out of memory): these inputs fail, the run goes on
        for o, *_ in work:
            o.error = f"model failed on this batch: {type(e).__name__}: {e}".splitlines()[0]
        return
    for (o, specs, cands, _), s in zip(work, scores):
        best = cropper.best_crops(cands, s, [r.value for r in specs], job.top_k)
        for r in specs:
            o.results[r.text] = (best[r.value].boxes, best[r.value].scores)


class BoxesFile:
    """``--boxes FILE``: object boxes per input, in upright original pixels."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"--boxes {path}: cannot read it as JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--boxes {path}: expected a JSON object mapping file names to box lists")
        self.path = path
        self.boxes: Dict[str, torch.Tensor] = {}
        for key, value in data.items():
            ok = isinstance(value, list) and all(
                isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          and math.isfinite(v) for v in b)
                for b in value
            )
            if not ok:
                raise ValueError(f"--boxes {path}: entry {key!r} must be a list of [x1, y1, x2, y2] number lists")
            self.boxes[key] = torch.tensor(value, dtype=torch.float32).reshape(-1, 4)
        self.absolute = {os.path.abspath(k): k for k in self.boxes}
        names: Dict[str, List[str]] = {}
        for k in self.boxes:
            names.setdefault(os.path.basename(k), []).append(k)
        self.by_name = {n: ks[0] for n, ks in names.items() if len(ks) == 1}

    def lookup(self, entry: Entry):
        """The input's boxes, or an error message."""
        for key in (entry.file, self.absolute.get(os.path.abspath(entry.file)), self.by_name.get(os.path.basename(entry.file))):
            if key is not None and key in self.boxes:
                return self.boxes[key]
        return f"no entry for this file in --boxes {self.path}"


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------
def _save_options(im: Image.Image, fmt: str, params: dict) -> dict:
    opts = {}
    if im.info.get("icc_profile"):
        opts["icc_profile"] = im.info["icc_profile"]
    exif = im.info.get("exif")
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


def write_atomic(path: str, writer, overwrite: bool) -> None:
    """:func:`s2c_ops.files.write_atomic`, an existing output being this input's error."""
    try:
        write_file_atomic(path, writer, overwrite=overwrite)
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


def _pixel_box(box, width: int, height: int) -> Tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = min(max(round(x1), 0), width), min(max(round(x2), 0), width)
    y1, y2 = min(max(round(y1), 0), height), min(max(round(y2), 0), height)
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


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
            o.results[text] = f"ratio {text}: cannot write: {_describe(e)}"
        return
    try:
        out_fmt, ext = _output_format(fmt, o.entry.path)
        for r in job.ratios:
            if r.text not in ok:
                continue
            boxes, scores = ok[r.text]
            paths = job.crop_paths(o.entry, r, ext, len(boxes))
            written: List[str] = []
            try:
                for box, path in zip(boxes, paths):
                    crop = image.crop(_pixel_box(box, image.width, image.height))
                    if job.size is not None and crop.size != job.size:
                        crop = _resizable(crop).resize(job.size, Image.Resampling.LANCZOS)
                    opts = _save_options(crop, out_fmt, params)
                    write_atomic(path, lambda tmp, c=crop, o_=opts: c.save(tmp, format=out_fmt, **o_), job.overwrite)
                    written.append(path)
                o.outputs[r.text] = paths
                if job.show:
                    path = job.show_path(o.entry, r)
                    preview = _draw_show(image, boxes, scores)
                    write_atomic(path, lambda tmp, p=preview: p.save(tmp, format="PNG"), job.overwrite)
                    o.shows[r.text] = path
            except Exception as e:  # this ratio fails as a whole: no outputs of it are left behind
                for done in written:
                    try:
                        os.unlink(done)
                    except OSError:
                        pass
                o.outputs.pop(r.text, None)
                msg = str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
                o.results[r.text] = f"ratio {r.text}: cannot write: {msg}".splitlines()[0]
    finally:
        image.close()
        if o.decoded is not None:
            o.decoded.image = None


# ---------------------------------------------------------------------------------------------------
# Records and messages
# ---------------------------------------------------------------------------------------------------
def _round(values, digits: int) -> list:
    return [round(float(v), digits) for v in values]


def records_of(o: Outcome, job: Job, model: str, proposer: str) -> List[dict]:
    out = []
    d = o.decoded
    for r in job.ratios:
        rec = {"file": o.entry.file}
        result = o.error or o.entry.error or o.results.get(r.text, "not processed")
        if isinstance(result, tuple):
            boxes, scores = result
            rec.update(status="ok", width=d.width, height=d.height, ratio=r.value, ratio_text=r.text,
                       boxes=[_round(b, 3) for b in boxes.tolist()], scores=_round(scores.tolist(), 6),
                       outputs=o.outputs.get(r.text, []), show=o.shows.get(r.text), model=model, proposer=proposer)
        else:
            rec.update(status="error", ratio=r.value, ratio_text=r.text, error=result)
            if d is not None:
                rec.update(width=d.width, height=d.height)
            rec.update(model=model, proposer=proposer)
        out.append(rec)
    return out


def outcome_line(records: List[dict]) -> Tuple[bool, str]:
    """(ok, one line) for an input's records."""
    file = records[0]["file"]
    errors = [r for r in records if r["status"] != "ok"]
    if errors and len({r["error"] for r in errors}) == 1 and len(errors) == len(records):
        msg = errors[0]["error"]
        prefix = f"ratio {errors[0]['ratio_text']}: "
        if len(records) > 1 and msg.startswith(prefix):
            msg = msg[len(prefix):]
        return False, f"error {file}: {msg}"
    parts = []
    for r in errors + [r for r in records if r["status"] == "ok"]:  # the failures first
        if r["status"] != "ok":
            parts.append(r["error"])
        elif r["outputs"]:
            parts.append(f"{r['ratio_text']} -> {', '.join(r['outputs'])}")
        else:
            box = ", ".join(f"{v:.0f}" for v in r["boxes"][0]) if r["boxes"] else ""
            parts.append(f"{r['ratio_text']} [{box}] {r['scores'][0]:.3f}" if r["boxes"] else r["ratio_text"])
    return not errors, ("error " if errors else "ok ") + f"{file}: " + "; ".join(parts)


class Reporter:
    def __init__(self, total: int, show_bar: bool, to_stdout: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.to_stdout = to_stdout
        self.records: List[dict] = []
        self.failed_inputs = 0
        self.count = 0
        self.bar = None
        if self.tty and show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="image", desc="s2c crop", file=sys.stderr, dynamic_ncols=True)

    def _message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def add(self, records: List[dict]) -> None:
        self.records.extend(records)
        self.count += 1
        ok, line = outcome_line(records)
        if not ok:
            self.failed_inputs += 1
        if self.tty or not ok:
            self._message(line)
        if self.to_stdout:
            try:
                sys.stdout.write("".join(json.dumps(r) + "\n" for r in records))
                sys.stdout.flush()
            except BrokenPipeError:  # the reader left (e.g. | head): keep working, stop printing
                self.to_stdout = False
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_jsonl(path: str, records: List[dict]) -> None:
    def writer(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)

    write_atomic(path, writer, overwrite=True)


def merge_parts(path: str, world: int, entries: List[Entry], job: Job) -> List[str]:
    """Rank 0: merges FILE.rank<r> into FILE in input order, one record per input and ratio.
    Returns the problems (a rank's part missing, inputs without records)."""
    order = {e.file: i for i, e in enumerate(entries)}
    ratio_order = {r.text: i for i, r in enumerate(job.ratios)}
    merged: Dict[tuple, dict] = {}
    problems = []
    for rank in range(world):
        part = f"{path}.rank{rank}"
        try:
            with open(part, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        rec = json.loads(line)
                        merged.setdefault((order.get(rec["file"], len(order)), ratio_order.get(rec["ratio_text"], 0),
                                           rec["file"]), rec)
        except OSError as e:
            problems.append(f"rank {rank} left no records ({e.strerror}: {part})")
    missing = [e for i, e in enumerate(entries) if any((i, j, e.file) not in merged for j in range(len(job.ratios)))]
    for e in missing:
        problems.append(f"no record for {e.file}")
    records = [merged[k] for k in sorted(merged)]
    write_jsonl(path, records)
    for rank in range(world):
        try:
            os.unlink(f"{path}.rank{rank}")
        except OSError:
            pass
    return problems


# ---------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------
def _load_model(args):
    """(model or None for the default, description)."""
    from ..models.s2cnet import S2CNet

    if args.official:
        return S2CNet.from_official(args.official, args.config), f"S2CNet {args.config} (official checkpoint {args.official})"
    if args.weights:
        from ..models.weights import load_weights

        try:
            return load_weights(args.weights)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"--weights {args.weights}: {e}") from None
    return None, "geometry prior (default)"


class _Done:
    """A finished future, for --workers 0."""

    def __init__(self, fn, *a):
        self.value = fn(*a)

    def result(self):
        return self.value


def _safe_decode(entry: Entry, preprocess: OfficialPreprocess, keep_full: bool, use_draft: bool) -> Outcome:
    o = Outcome(entry)
    if entry.error:
        return o
    try:
        o.decoded = decode(entry.path, preprocess, keep_full, use_draft)
    except InputError as e:
        o.error = str(e)
    except MemoryError:
        o.error = "not enough memory to decode this image"
    except Exception as e:
        o.error = (_describe(e).splitlines() or [type(e).__name__])[0]
    return o


def _safe_write(o: Outcome, job: Job) -> Outcome:
    try:
        write_outcome(o, job)
    except Exception as e:  # a bug or an unexpected failure: this input fails, the run goes on
        o.error = f"cannot write: {type(e).__name__}: {e}".splitlines()[0]
    return o


def process(entries: List[Entry], cropper, job: Job, reporter: Reporter, model: str, proposer: str,
            batch_size: int, workers: int, given: Optional[BoxesFile], use_draft: bool) -> None:
    """Decode (threads, one batch ahead) -> score (this thread) -> write (threads) -> report, in order."""
    keep_full = job.out is not None
    pool = ThreadPoolExecutor(workers, thread_name_prefix="s2c-crop") if workers > 0 else None

    def submit(fn, *a):
        return pool.submit(fn, *a) if pool is not None else _Done(fn, *a)

    batches = [entries[i : i + batch_size] for i in range(0, len(entries), batch_size)]
    decoding: Dict[int, list] = {}
    pending = None  # the previous batch's write futures

    def finish(futures) -> None:
        for f in futures:
            o = f.result()
            reporter.add(records_of(o, job, model, proposer))

    try:
        if batches:
            decoding[0] = [submit(_safe_decode, e, cropper.preprocess, keep_full, use_draft) for e in batches[0]]
        for b in range(len(batches)):
            if b + 1 < len(batches):
                decoding[b + 1] = [submit(_safe_decode, e, cropper.preprocess, keep_full, use_draft) for e in batches[b + 1]]
            outcomes = [f.result() for f in decoding.pop(b)]
            score_outcomes(cropper, outcomes, job, given)
            written = [submit(_safe_write, o, job) for o in outcomes]
            if pending is not None:
                finish(pending)
            pending = written
        if pending is not None:
            finish(pending)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def run(args) -> int:
    parser: argparse.ArgumentParser = args.crop_parser
    if args.official and not args.config:
        parser.error("--official needs --config (GAICv1 or GAICv2)")
    if args.config and not args.official:
        parser.error("--config goes with --official")
    if args.show and not args.out:
        parser.error("--show needs --out (the previews are written there)")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} exists and is not a folder")
    try:
        ranks = torchrun_ranks()
    except ValueError as e:
        parser.error(str(e))
    try:
        device = rank_device(args.device, ranks)
    except ValueError as e:
        parser.error(f"--{e}")  # "--device cuda: CUDA is not available here"
    rank, world = ranks.rank, ranks.world
    if args.json and os.path.exists(args.json) and not args.overwrite:
        parser.error(f"--json {args.json} exists (pass --overwrite to replace it)")
    if args.json and os.path.isdir(args.json):
        parser.error(f"--json {args.json} is a folder")

    ratios: List[RatioSpec] = []
    for r in args.ratio:  # the same ratio twice (16:9 and 32:18) is scored once, under its first spelling
        if all(r.value != q.value for q in ratios):
            ratios.append(r)
    if args.size is not None and rank == 0:
        target = args.size[0] / args.size[1]
        for r in ratios:
            if abs(math.log(target / r.value)) > math.log(1.01):
                print(f"s2c crop: note: --size {args.size[0]}x{args.size[1]} (ratio {target:.4g}) differs from "
                      f"--ratio {r.text} ({r.value:.4g}); those crops are stretched to exactly that size",
                      file=sys.stderr)

    given = BoxesFile(args.boxes) if args.boxes else None
    from ..cropping.cropper import Cropper
    from ..cropping.proposals import default_name, get_proposer

    model, model_name = _load_model(args)
    proposer_name = f"boxes ({args.boxes})" if given else (args.proposer or default_name())
    cropper = Cropper(model, get_proposer(args.proposer) if args.proposer else None, batch_size=args.batch_size,
                      device=device)

    job = Job(ratios, args.top_k, args.out, args.size, args.show, args.overwrite)
    entries, notes = expand_inputs(args.inputs, skip=args.out)
    if rank == 0:
        for note in notes:
            print(f"s2c crop: note: {note}", file=sys.stderr)
    if not entries:
        print("s2c crop: error: no input images", file=sys.stderr)
        return 1
    check_clashes(entries, job)
    mine = entries[rank::world]
    check_existing(mine, job)

    dist = None
    if init_process_group(ranks, "gloo"):  # a group someone else started is not ours to use or tear down
        import torch.distributed as dist

    to_stdout = not args.json and not sys.stdout.isatty()
    reporter = Reporter(len(mine), show_bar=rank == 0, to_stdout=to_stdout)
    try:
        with warnings.catch_warnings():
            # Pillow warns for images past MAX_IMAGE_PIXELS; they fail here with a clear message instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            process(mine, cropper, job, reporter, model_name, proposer_name, args.batch_size, args.workers,
                    given, USE_DRAFT)
    finally:
        reporter.close()

    failed = reporter.failed_inputs
    problems: List[str] = []
    if args.json:
        if world > 1:
            write_jsonl(f"{args.json}.rank{rank}", reporter.records)
        else:
            write_jsonl(args.json, reporter.records)
    if world > 1 and dist is not None:
        dist.barrier()
        if rank == 0 and args.json:
            problems = merge_parts(args.json, world, entries, job)
        total = torch.tensor([failed, len(problems)], dtype=torch.int64)
        dist.all_reduce(total)
        failed_all, problem_count = int(total[0]), int(total[1])
        dist.destroy_process_group()
    else:
        failed_all, problem_count = failed, 0
    for p in problems:
        print(f"s2c crop: error: {p}", file=sys.stderr)
    if rank == 0 and (reporter.tty or failed_all or problem_count):
        total_inputs = len(entries)
        print(f"s2c crop: {total_inputs} input(s), {total_inputs - failed_all} ok, {failed_all} failed"
              + (f" ({world} ranks)" if world > 1 else ""), file=sys.stderr)
    return 1 if failed_all or problem_count else 0
