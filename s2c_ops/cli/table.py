"""``s2c table``: a crop table (:class:`~s2c_ops.cropping.table.CropTable`) of image files, for training
with ``AestheticCrop(..., table=CropTable.load(TABLE))``.

    s2c table INPUT... --ratio R [--ratio R2 ...] --out TABLE [--keys path|fingerprint] [--candidates K]
              [--model NAME | --weights RUN | --official CKPT --config C] [--proposer NAME]
              [--device D] [--batch-size N] [--workers N] [--resume | --overwrite]

Also under ``torchrun --nproc_per_node=N -m s2c_ops.cli table ...``. The help text (``EPILOG``) is the
user documentation.
"""
import argparse
import hashlib
import itertools
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import torch

from ..cropping.candidates import FREE
from ..cropping.table_keys import path_key
from ..distributed import ProcessGroup, Ranks, rank_device, torchrun_ranks
from ..files import not_a_file_to_write, write_json_atomic
from .crop.args import MAX_BATCH_SIZE, MAX_TOP_K, MAX_WORKERS, int_arg, ratio_arg, unique_ratios
from .crop.inputs import Entry, iter_inputs
from .errors import Failure, UsageError, printable
from .models import ModelOptions, add_model_arguments, load_model

EPILOG = """\
inputs:
  Files, folders (recursive) and glob patterns, as s2c crop lists them (sorted, de-duplicated).
  Each image is decoded whole, upright (EXIF orientation applied) as 8-bit RGB, and scored by
  Cropper.crop_ratios: the table gives the crops Cropper.crop gives for these pixels.

keys (--keys):
  path (default): each image is found by its file path as listed here (normalised): pass the same
  path with each batch, AestheticCrop(...)(images, keys=paths). fingerprint: by its pixels (8-bit,
  upright, full size); AestheticCrop finds it with no keys when it sees these same pixels, so it must
  come first after decoding. See docs/training.md.

progress, --resume:
  Inputs are scored in batches of --batch-size (batch j = inputs j*N .. j*N+N-1 of the listing);
  each finished batch is written at once, atomically, to TABLE.parts/. A killed run continued with
  --resume (same inputs, ratios, model, proposer, keys, candidates and batch size; any number of
  ranks) skips the batches done and gives the same table as an uninterrupted run. At the end the
  parts become TABLE (written atomically) and TABLE.parts/ is removed.

torchrun:
  torchrun --nproc_per_node=N -m s2c_ops.cli table ... gives rank r the batches r, r+N, r+2N, ...;
  rank 0 writes TABLE when every rank is done. CUDA ranks use cuda:LOCAL_RANK.

exit status: 0 all inputs scored; 1 some failed (one line each; they are left out of the table, and
  TABLE.parts/ stays: --resume tries them again), or the model failed; 2 usage errors (TABLE exists
  without --overwrite, --resume of another run, --out a folder or a file that is not a crop table).
"""

FORMAT = "s2c-table-run/1"


@dataclass(frozen=True)
class TableOptions:
    """The command's options, read once and checked (:meth:`from_namespace`)."""

    inputs: Tuple[str, ...]
    ratios: Tuple[str, ...]
    out: str
    keys: str
    candidates: int
    model: ModelOptions
    proposer: Optional[str]
    ranks: Ranks
    device: torch.device
    batch_size: int
    workers: int
    resume: bool
    overwrite: bool

    @property
    def parts(self) -> str:
        return self.out + ".parts"

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "TableOptions":
        """The only code that reads the command line; the checks that need no model are
        :class:`~s2c_ops.cli.errors.UsageError`s."""
        model = ModelOptions.from_namespace(args)
        if any(r.value == FREE for r in args.ratio):
            raise UsageError("--ratio free: a crop table holds crops of given ratios (AestheticCrop's), not free form")
        try:
            ranks = torchrun_ranks()
            device = rank_device(args.device, ranks)
        except ValueError as e:
            raise UsageError(str(e)) from None
        options = cls(tuple(args.inputs), tuple(r.text for r in unique_ratios(args.ratio)), args.out, args.keys,
                      args.candidates, model, args.proposer, ranks, device, args.batch_size, args.workers,
                      args.resume, args.overwrite)
        _check_paths(options)  # every rank, before any of them writes
        return options


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``table`` (and its options) on the ``s2c`` sub-command parsers."""
    from ..cropping.proposals import list_proposers
    from ..cropping.table import DEFAULT_CANDIDATES

    p = subparsers.add_parser(
        "table", help="precompute a crop table for AestheticCrop (resumable, torchrun)",
        description="Scores each input once and writes, per ratio, its best candidate crops to one "
        "safetensors file that AestheticCrop(..., table=CropTable.load(FILE)) reuses every epoch.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or glob patterns")
    p.add_argument("--ratio", action="append", required=True, type=ratio_arg, metavar="R",
                   help="aspect ratio width:height, width/height or a number; repeat for several")
    p.add_argument("--out", required=True, metavar="TABLE", help="the table file to write (.safetensors)")
    p.add_argument("--keys", choices=("path", "fingerprint"), default="path", help="how images are found (default path)")
    p.add_argument("--candidates", type=int_arg(1, MAX_TOP_K), default=DEFAULT_CANDIDATES, metavar="K",
                   help=f"best crops kept per image and ratio (default {DEFAULT_CANDIDATES})")
    add_model_arguments(p)
    p.add_argument("--proposer", choices=list_proposers(), help="object-box proposer (default: faces, then salient regions)")
    p.add_argument("--device", help="torch device for the model (default: cuda when available, else cpu)")
    p.add_argument("--batch-size", type=int_arg(1, MAX_BATCH_SIZE), default=16, metavar="N", help="images per model call (default 16)")
    p.add_argument("--workers", type=int_arg(0, MAX_WORKERS), default=min(4, os.cpu_count() or 1), metavar="N",
                   help="decoding threads (default min(4, CPUs))")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the killed run that writes TABLE")
    again.add_argument("--overwrite", action="store_true", help="replace TABLE and the parts of an earlier run")
    p.set_defaults(func=command)
    return p


def _batches(options: TableOptions) -> Iterator[Tuple[int, List[Entry]]]:
    listing = (e for e in iter_inputs(options.inputs) if e.path is not None or e.error)
    for j in itertools.count():
        batch = list(itertools.islice(listing, options.batch_size))
        if not batch:
            return
        yield j, batch


def _part(options: TableOptions, j: int) -> str:
    return os.path.join(options.parts, f"batch{j:08d}.safetensors")


def _files_digest(batch: List[Entry]) -> str:
    return hashlib.sha256("\n".join(e.file for e in batch).encode("utf-8", "surrogateescape")).hexdigest()


def _decode(entry: Entry):
    """(uint8 upright RGB (3, H, W), None) or (None, one line why not). Read as ``s2c crop`` reads a photo:
    only a regular file, opened without waiting (a FIFO named like a photo fails alone)."""
    from ..cropping.images import image_to_tensor
    from .crop.decode import InputError, decode_full, describe

    if entry.error:
        return None, entry.error
    try:
        image = decode_full(entry.path)[0]
        with image:
            return image_to_tensor(image), None
    except InputError as e:
        return None, str(e)
    except MemoryError:
        return None, "not enough memory to decode this image"
    except Exception as e:
        return None, (describe(e).splitlines() or [type(e).__name__])[0]


def _holding(options: TableOptions, pixels, why):
    """``_decode``'s result, or (None, why not) where the image cannot hold one of the ratios (too small or
    too narrow): it fails alone, as in ``s2c crop``, instead of the batch."""
    from ..cropping.candidates import candidate_crops, parse_ratio

    if pixels is None:
        return pixels, why
    height, width = pixels.shape[-2:]
    for text in options.ratios:
        try:
            candidate_crops(height, width, parse_ratio(text))
        except ValueError as e:
            return None, f"ratio {text}: {e}"
    return pixels, None


def _check_paths(options: TableOptions) -> None:
    """Usage errors found before the model loads: TABLE or its parts there without --resume/--overwrite,
    --resume with no run to continue."""
    from ..cropping.table import CropTable

    marker = os.path.join(options.parts, "run.json")
    if options.resume and not os.path.exists(marker):
        done = CropTable.is_table(options.out)
        raise UsageError(f"--resume: no run to continue ({marker} is missing)" +
                         (f"; {options.out} is complete" if done else ""))
    if not options.resume and not options.overwrite:
        for path in (options.out, options.parts):
            if os.path.exists(path):
                raise UsageError(f"{path} exists: pass --resume to continue the run that wrote it, or --overwrite")
    why = not_a_file_to_write(options.out)
    if why:
        raise UsageError(f"--out {options.out}{why}")
    if os.path.exists(options.out) and not CropTable.is_table(options.out):
        raise UsageError(f"--out {options.out} exists and is not a crop table: it is never replaced (a photo or "
                         "another file given by mistake); give another --out")


def _check_resume(options: TableOptions, run_info: dict) -> None:
    """A --resume must have the options (and model) of the run it continues."""
    with open(os.path.join(options.parts, "run.json"), encoding="utf-8") as f:
        earlier = json.load(f)
    for name, value in run_info.items():
        if earlier.get(name) != value:
            raise UsageError(f"cannot --resume {options.out}: it was made with {name} {earlier.get(name)!r}, this "
                             f"run has {value!r}; resume with the same options, or start again with --overwrite")


def command(args: argparse.Namespace) -> int:
    """``s2c table``: its exit status."""
    return build_table(TableOptions.from_namespace(args))


def build_table(options: TableOptions) -> int:
    from ..cropping.cropper import Cropper
    from ..cropping.table import CropTable, proposer_identity

    note = (lambda text: print(f"s2c table: note: {text}", file=sys.stderr)) if options.ranks.rank == 0 else None
    if next(iter_inputs(options.inputs, note=note or (lambda text: None)), None) is None:
        raise Failure("no input images")
    model = load_model(options.model)
    table = CropTable(options.keys, candidates=options.candidates, lazy=False)
    table.bind(options.ratios, model.digest, proposer_identity(options.proposer))
    run_info = {"format": FORMAT, **table.metadata(), "batch_size": options.batch_size}
    if options.resume:
        _check_resume(options, run_info)
    rank = options.ranks.rank
    with ProcessGroup(options.ranks) as group:
        group.barrier()
        if rank == 0:
            if not options.resume:
                shutil.rmtree(options.parts, ignore_errors=True)
            write_json_atomic(os.path.join(options.parts, "run.json"), run_info)
        group.barrier()
        cropper = Cropper(model.module, options.proposer, batch_size=options.batch_size, device=options.device)
        failed = _score_batches(options, table, cropper, options.ranks)
        group.barrier()
        failed = int(group.sum(torch.tensor([failed]))[0])
        if rank == 0:
            _merge(options, table, failed)
    if rank == 0 and failed:
        print(f"s2c table: {failed} input(s) failed and are not in {options.out}", file=sys.stderr)
    return 1 if failed else 0


def _score_batches(options: TableOptions, table, cropper, ranks) -> int:
    """Scores this rank's batches that have no part yet, writing one part per batch; returns the failures."""
    from tqdm import tqdm

    mine = ((j, b) for j, b in _batches(options) if j % ranks.world == ranks.rank)
    todo = ((j, b) for j, b in mine if not (options.resume and _part_done(options, table, j, b)))
    failed = 0
    bar = tqdm(unit="image", desc="s2c table", file=sys.stderr, disable=ranks.rank != 0 or not sys.stderr.isatty())
    pool = ThreadPoolExecutor(max(1, options.workers), thread_name_prefix="s2c-table")
    try:
        ahead = None
        for j, batch in itertools.chain(todo, [(None, None)]):
            nxt = (j, batch, [pool.submit(_decode, e) for e in batch]) if batch is not None else None
            if ahead is not None:
                failed += _finish(options, table, cropper, *ahead)
                bar.update(len(ahead[1]))
            ahead = nxt
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return failed


def _finish(options: TableOptions, table, cropper, j: int, batch: List[Entry], futures) -> int:
    from ..cropping.table import CropTable

    decoded = [_holding(options, *f.result()) for f in futures]
    bad = [(e, why) for e, (_, why) in zip(batch, decoded) if why is not None]
    for e, why in bad:
        print(printable(f"error {e.file}: {why}"), file=sys.stderr)
    good = [(e, px) for e, (px, _) in zip(batch, decoded) if px is not None]
    part = CropTable(table.keys, candidates=table.candidates, lazy=False)
    part.bind(table.ratios, table.model, table.proposer)
    if good:
        keys = None if table.keys == "fingerprint" else torch.tensor([path_key(e.file) for e, _ in good])
        part.fill(cropper, [px for _, px in good], keys)
    # A batch with failures is done again by --resume (its images fail again, or now succeed).
    part.save(_part(options, j), extra={"files": _files_digest(batch), "failed": str(len(bad))})
    return len(bad)


def _part_done(options: TableOptions, table, j: int, batch: List[Entry]) -> bool:
    from ..cropping.table import CropTable

    path = _part(options, j)
    if not os.path.exists(path):
        return False
    part = CropTable.load(path)
    table.same_kind(part)
    return part.extra.get("files") == _files_digest(batch) and part.extra.get("failed") == "0"


def _merge(options: TableOptions, table, failed: int) -> None:
    """Rank 0 at the end: the parts of this listing's batches into TABLE, then the parts removed, unless
    inputs failed: then they stay, for a ``--resume`` that tries those inputs again."""
    from ..cropping.table import CropTable

    for j, batch in _batches(options):
        path = _part(options, j)
        if os.path.exists(path):
            part = CropTable.load(path)
            if part.extra.get("files") == _files_digest(batch):
                table.update(part)
    table.save(options.out)
    if not failed:
        shutil.rmtree(options.parts, ignore_errors=True)
