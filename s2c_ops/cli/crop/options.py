"""``s2c crop``'s options, read once: :meth:`CropOptions.from_namespace` is the only code that reads the
parsed command line. It runs every check that needs no model (a failure is a
:class:`~s2c_ops.cli.errors.UsageError`: exit status 2, one line) and hands the run a frozen, typed object."""
import argparse
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ...distributed import Ranks, rank_device, torchrun_ranks
from ...files import Leftovers, not_a_file_to_write, not_a_folder_to_write
from ..errors import UsageError
from ..models import ModelOptions
from .args import Job, RatioSpec, unique_ratios
from .inputs import Reserved
from .journal import is_journal, parts_of
from .score import BoxesFile


@dataclass(frozen=True)
class CropOptions:
    """Everything a ``s2c crop`` run was asked for, checked."""

    inputs: Tuple[str, ...]
    ratios: Tuple[RatioSpec, ...]  # distinct values, in the order given
    model: ModelOptions
    ranks: Ranks
    device: torch.device
    size: Optional[Tuple[int, int]] = None  # --size WxH as (height, width)
    top_k: int = 1
    boxes: Optional[BoxesFile] = None
    proposer: Optional[str] = None
    out: Optional[str] = None
    json: Optional[str] = None
    resume: bool = False
    show: bool = False
    batch_size: int = 16
    workers: int = 0
    overwrite: bool = False

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "CropOptions":
        model = ModelOptions.from_namespace(args)
        _check_paths(args)
        try:
            ranks = torchrun_ranks()
        except ValueError as e:
            raise UsageError(str(e)) from None
        try:
            device = rank_device(args.device, ranks)
        except ValueError as e:
            raise UsageError(f"--{e}") from None  # "--device cuda: CUDA is not available here"
        try:
            boxes = BoxesFile(args.boxes) if args.boxes else None
        except ValueError as e:
            raise UsageError(str(e)) from None
        return cls(tuple(args.inputs), tuple(unique_ratios(args.ratio)), model, ranks, device, args.size, args.top_k,
                   boxes, args.proposer, args.out, args.json, args.resume, args.show, args.batch_size, args.workers,
                   args.overwrite)

    @property
    def reserved(self) -> Reserved:
        return Reserved(self.out, self.json)

    @property
    def proposer_name(self) -> str:
        """The object boxes, as records and ``--resume`` name them."""
        return f"boxes ({self.boxes.path})" if self.boxes else (self.proposer or "default")

    def job(self) -> Job:
        """What the run writes (``--resume`` replaces the outputs of the inputs it does again: a killed run
        may have written them)."""
        return Job(list(self.ratios), self.top_k, self.out, self.size, self.show, self.overwrite or self.resume,
                   Leftovers())


def _check_paths(args: argparse.Namespace) -> None:
    """The checks of --out, --json, --resume, --show and the input folders."""
    if args.show and not args.out:
        raise UsageError("--show needs --out (the previews are written there)")
    why = args.out and not_a_folder_to_write(args.out)
    if why:
        raise UsageError(f"--out {args.out}{why}")
    if args.resume and not args.json:
        raise UsageError("--resume needs --json FILE (the journal of the run to continue)")
    why = args.json and not_a_file_to_write(args.json)
    if why:
        raise UsageError(f"--json {args.json}{why}")
    if args.json and not args.resume and not args.overwrite:
        if os.path.exists(args.json):
            raise UsageError(f"--json {args.json} exists: pass --resume to continue the run that wrote it, "
                             "or --overwrite to start again")
        if parts_of(args.json):
            raise UsageError(f"--json {args.json}: the parts {args.json}.rank* of a run that was stopped exist: "
                             "pass --resume to continue it, or --overwrite to start again")
    if args.json and os.path.isfile(args.json) and not is_journal(args.json):
        raise UsageError(f"--json {args.json} line 1 is not a record of s2c crop: a file that is not a journal is "
                         "never replaced or continued; give another --json FILE")
    reserved = Reserved(args.out, args.json)
    for arg in args.inputs:
        if os.path.isdir(arg) and reserved.holds(arg):
            raise UsageError(f"input folder {arg} is the --out folder or inside it: crops would be written among "
                             "the photos and taken as inputs by the next run; give another --out")
