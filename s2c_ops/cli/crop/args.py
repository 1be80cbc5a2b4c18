"""``s2c crop``'s arguments: the parser, its help text (:func:`help_text`: the user documentation) and the
settings the run derives from them (:class:`Job`: ratios, output names)."""
import argparse
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from PIL import Image

from ...cropping.candidates import Ratio, parse_ratio
from ...files import Leftovers
from ..models import add_model_arguments

_BEFORE = """\
inputs:
  Files, folders (searched recursively for files with an image extension Pillow knows; hidden
  files and the --out folder are skipped) and glob patterns (quoted, ** allowed), listed one folder
  at a time in name order. Links to folders are followed, but no folder is entered twice (a link
  loop ends). A file listed twice is processed once. A run never reads what it writes: a file
  inside --out, or the --json journal, given by name fails as an input, and an input folder that is
  --out or inside it is a usage error. Only regular files are read (a FIFO or a device named like a
  photo fails with one line; nothing waits on it). Inputs are listed and processed as a stream:
  memory does not grow with their number (beyond a path or two per input, and one per folder).
  An animated or multi-page image (GIF, TIFF, WebP) is cropped from its first frame or page; its
  crop has that one frame. EXIF orientation is applied before anything else:
  boxes and sizes are those of the upright image. Images need both sides >= 32 px and at most
  Image.MAX_IMAGE_PIXELS pixels (Pillow's decompression-bomb limit). CMYK, grayscale, palette,
  16-bit and alpha images are converted to 8-bit RGB for the model (alpha over white, 16-bit
  scaled, CMYK through its ICC profile when it has one); the crops keep the original pixels and mode.

ratios:
  "16:9", "16/9" or "1.778" (width / height, positive and finite), or "free": the best crop of
  any shape (the official grid's, aspect ratios 1:2 to 2:1). Repeat --ratio for several; all
  ratios of an image are scored in one model call.

outputs (with --out DIR):
  DIR/<stem>_<ratio>.<ext>, the ratio written with "x" ("16:9" -> 16x9, "4/3" -> 4x3, "1.5" -> 1.5);
  with --top-k K > 1: DIR/<stem>_<ratio>_<rank>.<ext>, rank 1 the best. Files found in a folder
  INPUT keep their sub-folder below DIR. Crops are cut from the full-resolution upright image in
  whole pixels, centred on the box and with its ratio to within half a pixel (the short side is the
  box's rounded, the long one that times the ratio; free form: the box's corners rounded), and
  written under the input's extension in the format it names (MPO as JPEG; .png when Pillow cannot
  write that format, or would not keep the crop as cut: icons, 1-bit formats): the input's name
  alone decides an output's name, so two inputs whose outputs would share a name are found before
  anything is written (the second fails). A file whose
  content is of another format than its extension says (a JPEG named .png) is converted (to RGB
  where the format needs it). An input written in its own format keeps its JPEG quantisation tables
  and chroma subsampling (its quality), ICC profile, EXIF (orientation removed, the pixels are
  upright), DPI and comment; PNG its mode (alpha, palette, 16-bit), ICC profile, EXIF and text.
  --size WxH resizes every crop to exactly W x H pixels (Lanczos); when W/H differs from a ratio by
  more than 1% the crop is stretched to it (a note says so at the start); W x H may not pass
  Image.MAX_IMAGE_PIXELS, the inputs' own limit. --show also writes
  DIR/<stem>_<ratio>_show.png: the upright image (long side <= 1280 px) with the top-k boxes drawn,
  the best in red. Every file is written to a temporary file in the same folder and renamed into
  place (a temporary name of 30 characters at most, so any legal output name works); an existing
  output is an error for that input unless --overwrite is given, which replaces the file (an output
  name that is a link is replaced by the crop, never written through). New files get the mode the
  umask gives (0644 under umask 022), replaced ones keep theirs. Without --out nothing but the
  records is written (--show needs --out). A --out folder that cannot be written stops the run at
  the start, with one line, before the model loads.

"""

_AFTER = """\
stopping (SIGINT, i.e. Ctrl-C, or SIGTERM):
  The run stops taking new inputs and finishes the ones being written (inputs decoded but not yet
  scored are dropped: no record, no file). No partial crop or temporary file is left; the journal
  is kept and synced. One line says what is done and how to resume; the exit status is 130
  (SIGINT) or 143 (SIGTERM). A second Ctrl-C stops sooner: writes not yet started are dropped
  (still no partial file; those inputs are done again by --resume).

disk full, no permission:
  An output that cannot be written (no space left, quota exceeded, read-only file system, no
  permission) fails that input's ratio with a record naming the file and the reason; nothing
  partial is left. Then, as nothing more can be written, the run stops taking new inputs and ends
  with one line saying how to resume once the cause is fixed. A journal that cannot be written
  stops the run the same way.

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
  upright image, x1 < x2 and y1 < y2 (an empty or inverted box is a usage error), best first (the
  model takes the first bbox_num, whole-image boxes fill up the rest; [] for none). Keys are
  matched against the file as written in the records, then its absolute path, then its base name
  (when no other key has that base name). An input with no entry, or with a box wholly outside
  it (boxes of other pixels), fails.

--weights RUN:
  A .safetensors file written by S2CNet.save (or by GeometryPrior.save), or a folder holding
  model.safetensors (what s2c train writes).

--model NAME:
  A model shipped in the package: "default" (what runs without --official, --weights or --model:
  S2CNet trained on FCDB's photos, blended with the geometry priors), or "prior", the geometry prior
  alone (no pixels: faster, and the default of earlier releases). The official configurations
  (s2cnet_gaicv1, s2cnet_gaicv2) come with the authors' checkpoint: --official CKPT --config C.

memory:
  An input is decoded whole, with the copies its conversion for the model makes: an 88-megapixel
  PNG (the most Pillow's decompression-bomb limit, Image.MAX_IMAGE_PIXELS, lets through) takes
  about 2.5 GB while it is read, however small its file. That holds for each of the --workers
  threads decoding at once; the full-resolution images of a batch are kept for writing when --out
  is given. For very large photos, lower --workers and --batch-size.

exit status: 0 when every input and ratio succeeded; 1 when any failed, the run stopped because it
  could not write, or the model failed (one line says why, out of memory among them); 2 for usage
  errors (a --resume with other options, a --json FILE in use by another run, a --json or --out
  below a file, a device that cannot compute (meta), an optional library the options need that is
  not installed: one line with the command that installs it); 130 or 143 when stopped by SIGINT
  or SIGTERM (Ctrl-C while the model loads too: one line, no traceback).
"""


@dataclass(frozen=True)
class RatioSpec:
    text: str  # as given, stripped
    value: Ratio  # width / height, or "free"

    @property
    def tag(self) -> str:
        """The ratio in file names: "16:9" -> "16x9", "4/3" -> "4x3", "1.5" -> "1.5"."""
        return "".join(self.text.split()).replace(":", "x").replace("/", "x")


def ratio_arg(text: str) -> RatioSpec:
    try:
        value = parse_ratio(text, free=True)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return RatioSpec(text.strip(), value)


def size_arg(text: str) -> Tuple[int, int]:
    """``WxH`` as written on the command line, read into ``(height, width)``."""
    parts = text.strip().lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected WxH in whole pixels, e.g. 1280x720") from None
    if not (0 < w <= 65500 and 0 < h <= 65500):
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: width and height must be 1..65500 px")
    if Image.MAX_IMAGE_PIXELS is not None and w * h > Image.MAX_IMAGE_PIXELS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: {w * h} pixels, more than the "
                                         f"{Image.MAX_IMAGE_PIXELS} an input may have (Pillow's decompression-bomb "
                                         "limit)")
    return h, w


#: Upper bounds of the counts a command line takes: past them a count only exhausts memory (a crop name is
#: planned per rank of --top-k before scoring; no ratio has 1,000 candidates).
MAX_TOP_K = 1000
MAX_BATCH_SIZE = 4096
MAX_WORKERS = 256


def int_arg(minimum: int, maximum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def help_text() -> str:
    """The user documentation of ``s2c crop --help``: the records and the journal are told where they are
    defined."""
    from .journal import HELP as JOURNAL
    from .record import HELP as RECORDS

    return "\n".join([_BEFORE.rstrip("\n"), "", RECORDS, JOURNAL, _AFTER])


def add_arguments(subparsers) -> argparse.ArgumentParser:
    """Registers ``crop`` and its options on the ``s2c`` sub-command parsers."""
    from ...cropping.proposals import list_proposers

    p = subparsers.add_parser(
        "crop",
        help="best crops of photos for aspect ratios (files, folders, globs)",
        description="Finds the best crops of each input for each --ratio and writes the crops, "
        "a JSON Lines record per input and ratio, and optionally previews.",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or glob patterns")
    p.add_argument("--ratio", action="append", required=True, type=ratio_arg, metavar="R",
                   help="aspect ratio width:height, width/height, a number, or free (any shape); repeat for several")
    p.add_argument("--size", type=size_arg, metavar="WxH", help="resize each crop to exactly W x H pixels")
    p.add_argument("--top-k", type=int_arg(1, MAX_TOP_K), default=1, metavar="K", help="best K crops per ratio (default 1)")
    add_model_arguments(p)
    objects = p.add_mutually_exclusive_group()
    objects.add_argument("--boxes", metavar="FILE", help="JSON object boxes per input (see below)")
    objects.add_argument("--proposer", choices=list_proposers(), help="object-box proposer (default: faces, then salient regions)")
    p.add_argument("--out", metavar="DIR", help="write the crops here (created if missing)")
    p.add_argument("--json", metavar="FILE", help="append the JSON Lines records here as they are made (a journal)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run that wrote --json FILE: skip the inputs it finished (see below)")
    p.add_argument("--show", action="store_true", help="also write a PNG preview with the top-k boxes (needs --out)")
    p.add_argument("--device", help="torch device for the model (default: cuda when available, else cpu)")
    p.add_argument("--batch-size", type=int_arg(1, MAX_BATCH_SIZE), default=16, metavar="N", help="images per model call (default 16)")
    p.add_argument("--workers", type=int_arg(0, MAX_WORKERS), default=min(4, os.cpu_count() or 1), metavar="N",
                   help="decode/write threads; 0 does everything in the main thread (default min(4, CPUs))")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (and an existing --json FILE)")
    return p


def unique_ratios(ratios: List[RatioSpec]) -> List[RatioSpec]:
    """The same ratio twice (16:9 and 32:18) is scored once, under its first spelling."""
    out: List[RatioSpec] = []
    for r in ratios:
        if all(r.value != q.value for q in out):
            out.append(r)
    return out


#: The format of crops of a file whose extension names one Pillow can read but not write as it is.
FALLBACK_FORMAT = ("PNG", ".png")
#: Formats Pillow lists as writable whose writers would not keep a crop as cut: icons (written at icon
#: sizes), 1-bit and palette-only formats, and stubs that write only through a handler Pillow does not ship.
NOT_WRITTEN_AS_CUT = frozenset({"BLP", "BUFR", "GRIB", "HDF5", "ICNS", "ICO", "MSP", "PALM", "WMF", "XBM"})


def output_format(path: str) -> Tuple[str, str]:
    """(Pillow format, extension) of the crops of the input ``path``: the format its extension names,
    under that same extension (MPO as JPEG), or PNG when Pillow cannot write that format as cut
    (:data:`NOT_WRITTEN_AS_CUT`). The input's name alone decides, never its content, so that an output's
    name is known before the input is read (the clash check, ``--resume`` and the writer use this one
    rule)."""
    ext = os.path.splitext(path)[1]
    Image.init()
    fmt = Image.registered_extensions().get(ext.lower())
    if fmt == "MPO":
        fmt = "JPEG"
    if fmt is None or fmt not in Image.SAVE or fmt in NOT_WRITTEN_AS_CUT:
        return FALLBACK_FORMAT
    return fmt, ext


@dataclass
class Job:
    """What the run writes: settings shared by all inputs, and the names of an input's outputs."""

    ratios: List[RatioSpec]
    top_k: int
    out: Optional[str]
    size: Optional[Tuple[int, int]]  # (height, width)
    show: bool
    overwrite: bool
    leftovers: Optional[Leftovers] = field(default=None, compare=False)  # killed runs' temporary files

    def _base(self, entry, ratio: RatioSpec) -> str:
        stem = os.path.splitext(os.path.basename(entry.path or entry.file))[0]
        return os.path.join(self.out, entry.sub, f"{stem}_{ratio.tag}")

    def crop_paths(self, entry, ratio: RatioSpec, count: int) -> List[str]:
        """The files of an input's ``count`` best crops of ``ratio``, best first."""
        base, ext = self._base(entry, ratio), output_format(entry.path or entry.file)[1]
        if self.top_k == 1:
            return [base + ext][:count]
        return [f"{base}_{k + 1}{ext}" for k in range(count)]

    def show_path(self, entry, ratio: RatioSpec) -> str:
        return self._base(entry, ratio) + "_show.png"

    def planned_paths(self, entry) -> List[str]:
        """Every output an input may get."""
        paths = []
        for ratio in self.ratios:
            paths += self.crop_paths(entry, ratio, self.top_k)
            if self.show:
                paths.append(self.show_path(entry, ratio))
        return paths
