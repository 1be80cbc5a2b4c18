"""``s2c crop``, the command: the pipeline over the input stream, stopping cleanly (signals, nothing
writable), the journal's life and torchrun.

Per file the pipeline is: open (header only) -> checks (decompression-bomb limit, smallest side) ->
decode for the model -> candidates of each ratio in the upright full-resolution pixels -> one batched
scoring call per group of same-size images -> crops cut from the full-resolution upright image and
written atomically in the input's format -> the records, appended to the journal. Decoding (one batch
ahead) and writing run on ``--workers`` threads (Pillow releases the GIL) while the main thread lists the
inputs and scores; records come out in input order.
"""
import argparse
import itertools
import math
import os
import signal
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager, nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import torch
from PIL import Image

from ...distributed import init_process_group, rank_device, torchrun_ranks
from . import decode as decoding
from .args import Job, unique_ratios
from .inputs import Entry, Reserved, check_existing, iter_inputs, mark_clashes
from .journal import (Finished, JournalError, JournalLock, Stamp, consolidate, is_journal, merge, open_journal,
                      parts_of, records_of, run_stamp, start_fresh, validate)
from .report import Reporter
from ..models import check_model_arguments, load_model
from .score import BoxesFile, Outcome, score_outcomes
from .write import Leftovers, os_error_text, safe_write

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


@dataclass
class Stop:
    """Why the run stops taking new inputs: a signal, or nothing more can be written."""

    signal: Optional[int] = None
    reason: Optional[str] = None

    def __bool__(self) -> bool:
        return self.signal is not None or self.reason is not None


@contextmanager
def stopping_on_signals(stop: Stop):
    """SIGINT and SIGTERM set ``stop.signal``: the run finishes what is in flight and ends. A second one
    raises KeyboardInterrupt (writes in flight still finish or leave nothing: they are atomic)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.signal is not None:
            raise KeyboardInterrupt
        stop.signal = signum

    previous = {s: signal.signal(s, handler) for s in SIGNAL_NAMES}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class _Done:
    """A finished future, for --workers 0."""

    def __init__(self, fn, *a):
        self.value = fn(*a)

    def result(self):
        return self.value


def process(entries: Iterator[Entry], cropper, job: Job, reporter: Reporter, stamp: Stamp, batch_size: int,
            workers: int, given: Optional[BoxesFile], use_draft: bool, stop: Stop) -> None:
    """Decode (threads, one batch ahead) -> score (this thread) -> write (threads) -> report, in order,
    taking ``batch_size`` inputs at a time from the stream until it ends or ``stop`` is set. Then the
    writes in flight are finished and reported; inputs decoded but not scored are dropped."""
    keep_full = job.out is not None
    pool = ThreadPoolExecutor(workers, thread_name_prefix="s2c-crop") if workers > 0 else None

    def submit(fn, *a):
        return pool.submit(fn, *a) if pool is not None else _Done(fn, *a)

    def decode_one(entry: Entry) -> Outcome:
        o = Outcome(entry)
        if not entry.error:
            o.decoded, o.error = decoding.try_decode(entry.path, cropper.preprocess, keep_full, use_draft)
        return o

    def next_batch() -> list:
        return [] if stop else [submit(decode_one, e) for e in itertools.islice(entries, batch_size)]

    def finish(futures) -> None:
        for f in futures:
            o = f.result()
            reporter.add(records_of(o, job, stamp))
            stop.reason = stop.reason or o.unwritable or reporter.journal_error

    pending: list = []
    try:
        decoding_now = next_batch()
        while decoding_now and not stop:
            ahead = next_batch()
            outcomes = [f.result() for f in decoding_now]
            if stop:
                break
            score_outcomes(cropper, outcomes, job, given)
            written = [submit(safe_write, o, job) for o in outcomes]
            finish(pending)
            pending, decoding_now = written, ahead
        finish(pending)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class Inputs:
    """This rank's inputs as a stream (every rank lists them all, in the same order, and takes every
    world-th), skipping those ``finished`` says are done and counting what it sees; with ``keep_order``
    also the input order (file -> number), for merging the journal."""

    def __init__(self, args, job: Job, rank: int, world: int, note=None, keep_order: bool = False) -> None:
        listing = mark_clashes(iter_inputs(args.inputs, Reserved(args.out, args.json), note or (lambda text: None)),
                               job)
        first = next(listing, None)
        self.empty = first is None
        self.listing = itertools.chain([first], listing) if first is not None else iter(())
        self.job, self.rank, self.world = job, rank, world
        self.finished: Optional[Finished] = None
        self.order: Optional[Dict[str, int]] = {} if keep_order else None
        self.seen = self.skipped = 0

    def __iter__(self) -> Iterator[Entry]:
        for i, entry in enumerate(self.listing):
            self.seen += 1
            if self.order is not None:
                self.order[entry.file] = i
            if i % self.world != self.rank:
                continue
            if self.finished is not None and self.finished.done(entry, self.job):
                self.skipped += 1
                continue
            check_existing(entry, self.job)
            yield entry


def _not_a_folder(path: str) -> Optional[str]:
    """The first existing folder of ``path``'s that is a file (``a`` for ``a/b/x.jsonl``), or None."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return None if os.path.isdir(folder) else folder


def check_arguments(args, parser: argparse.ArgumentParser) -> None:
    """Every check that needs no model and writes nothing; a failure is a usage error."""
    check_model_arguments(parser, args)
    if args.show and not args.out:
        parser.error("--show needs --out (the previews are written there)")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} exists and is not a folder")
    if args.resume and not args.json:
        parser.error("--resume needs --json FILE (the journal of the run to continue)")
    if args.json and os.path.isdir(args.json):
        parser.error(f"--json {args.json} is a folder")
    for flag, path in (("--out", args.out), ("--json", args.json)):
        blocked = path and _not_a_folder(path)
        if blocked:
            parser.error(f"{flag} {path}: {blocked} is a file, not a folder")
    if args.json and not args.resume and not args.overwrite:
        if os.path.exists(args.json):
            parser.error(f"--json {args.json} exists: pass --resume to continue the run that wrote it, "
                         "or --overwrite to start again")
        if parts_of(args.json):
            parser.error(f"--json {args.json}: the parts {args.json}.rank* of a run that was stopped exist: pass "
                         "--resume to continue it, or --overwrite to start again")
    if args.json and os.path.isfile(args.json) and not is_journal(args.json):
        parser.error(f"--json {args.json} line 1 is not a record of s2c crop: a file that is not a journal is "
                     "never replaced or continued; give another --json FILE")
    reserved = Reserved(args.out, args.json)
    for arg in args.inputs:
        if os.path.isdir(arg) and reserved.holds(arg):
            parser.error(f"input folder {arg} is the --out folder or inside it: crops would be written among the "
                         "photos and taken as inputs by the next run; give another --out")


def probe_out(folder: str) -> Optional[str]:
    """Why nothing can be written to the ``--out`` folder (created here when missing), or None: found
    before the model loads, not after a batch of inputs has failed."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"cannot write to --out {folder}: {os_error_text(e)}"
    return None


def _stopped_line(stop: Stop, args, reporter: Reporter, inputs: Inputs, rank: int, world: int) -> str:
    why = f"stopped by {SIGNAL_NAMES[stop.signal]}" if stop.signal is not None else f"stopped: {stop.reason}"
    where = f" (rank {rank} of {world})" if world > 1 else ""
    done = f"{reporter.count} input(s) done this run ({reporter.failed_inputs} failed)"
    if inputs.skipped:
        done += f", {inputs.skipped} by an earlier one"
    if args.json:
        journal = args.json if world == 1 else f"{args.json}.rank{rank}"
        fix = "" if stop.signal is not None else "fix that, then "
        how = f"records in {journal}; to finish, {fix}run the same command with --resume"
    else:
        how = "no --json journal: pass --json FILE to be able to --resume; rerunning redoes every input"
    return f"s2c crop: {why}{where}: {done}; {how}"


def run(args) -> int:
    parser: argparse.ArgumentParser = args.crop_parser
    check_arguments(args, parser)
    try:
        ranks = torchrun_ranks()
    except ValueError as e:
        parser.error(str(e))
    try:
        device = rank_device(args.device, ranks)
    except ValueError as e:
        parser.error(f"--{e}")  # "--device cuda: CUDA is not available here"
    try:
        lock = JournalLock(args.json) if args.json and ranks.rank == 0 else nullcontext()
    except JournalError as e:
        parser.error(str(e))
    with lock:
        return _start(args, parser, ranks, device)


def _start(args, parser: argparse.ArgumentParser, ranks, device: torch.device) -> int:
    """The run once its arguments are checked and rank 0 holds the journal's lock."""
    rank, world = ranks.rank, ranks.world
    ratios = unique_ratios(args.ratio)
    if args.size is not None and rank == 0:
        target = args.size[0] / args.size[1]
        for r in ratios:
            if abs(math.log(target / r.value)) > math.log(1.01):
                print(f"s2c crop: note: --size {args.size[0]}x{args.size[1]} (ratio {target:.4g}) differs from "
                      f"--ratio {r.text} ({r.value:.4g}); those crops are stretched to exactly that size",
                      file=sys.stderr)

    try:
        given = BoxesFile(args.boxes) if args.boxes else None
    except ValueError as e:
        parser.error(str(e))
    unwritable_out = probe_out(args.out) if args.out else None  # every rank: none may go on alone
    if unwritable_out:
        print(f"s2c crop: error: {unwritable_out}", file=sys.stderr)
        return 1
    from ...cropping.cropper import Cropper
    from ...cropping.proposals import get_proposer

    model = load_model(args)
    proposer_name = f"boxes ({args.boxes})" if given else (args.proposer or "default")
    cropper = Cropper(model.module, get_proposer(args.proposer) if args.proposer else None, batch_size=args.batch_size,
                      device=device)
    # --resume replaces the outputs of the inputs it processes again: a killed run may have written them.
    job = Job(ratios, args.top_k, args.out, args.size, args.show, args.overwrite or args.resume, Leftovers())
    stamp = run_stamp(job, model, proposer_name)
    if args.resume:
        try:
            validate(args.json, stamp)
        except JournalError as e:
            parser.error(f"cannot --resume {args.json}: {e}. Resume with the same options, or start again "
                         "with --overwrite instead of --resume")

    show_bar = rank == 0 and sys.stderr.isatty()
    reporter = Reporter(show_bar, to_stdout=not args.json and not sys.stdout.isatty())
    note = (lambda text: reporter.message(f"s2c crop: note: {text}")) if rank == 0 else None
    merging = bool(args.json) and (args.resume or world > 1)
    inputs = Inputs(args, job, rank, world, note, keep_order=merging and rank == 0)
    if inputs.empty:
        reporter.close()
        print("s2c crop: error: no input images", file=sys.stderr)
        return 1
    stop = Stop()
    with stopping_on_signals(stop):
        return _run(args, cropper, job, stamp, given, ranks, reporter, inputs, merging, stop)


def _run(args, cropper, job: Job, stamp: Stamp, given: Optional[BoxesFile], ranks, reporter: Reporter,
         inputs: Inputs, merging: bool, stop: Stop) -> int:
    rank, world = ranks.rank, ranks.world
    dist = None
    if init_process_group(ranks, "gloo"):  # a group someone else started is not ours to use or tear down
        import torch.distributed as dist
    try:
        if args.json and rank == 0:
            consolidate(args.json) if args.resume else start_fresh(args.json, world)
        if dist is not None:
            dist.barrier()
        if args.json:
            reporter.journal = open_journal(args.json, rank, world, args.resume)
    except OSError as e:
        reporter.close()
        print(f"s2c crop: error: cannot write the journal {args.json}: {os_error_text(e)}", file=sys.stderr)
        if dist is not None:
            dist.destroy_process_group()
        return 1
    finished = inputs.finished = Finished(args.json) if args.resume else None
    if reporter.bar is not None:  # a first pass over the listing, for the bar's total
        counting = Inputs(args, job, rank, world)
        counting.finished = finished
        reporter.bar.total = sum(1 for _ in counting)
        reporter.bar.refresh()
    try:
        with warnings.catch_warnings():
            # Pillow warns for images past MAX_IMAGE_PIXELS; they fail here with a clear message instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            process(iter(inputs), cropper, job, reporter, stamp, args.batch_size, args.workers, given,
                    decoding.USE_DRAFT, stop)
    except KeyboardInterrupt:  # a second signal: what was in flight is finished or dropped, nothing partial
        stop.signal = stop.signal or signal.SIGINT
    finally:
        reporter.close()
        if finished is not None:
            finished.close()
    stop.reason = stop.reason or reporter.journal_error
    if stop:
        print(_stopped_line(stop, args, reporter, inputs, rank, world), file=sys.stderr)
        if dist is not None:
            dist.destroy_process_group()
        return 128 + stop.signal if stop.signal is not None else 1

    problems: List[str] = []
    if dist is not None:
        dist.barrier()
    if merging and rank == 0:
        try:
            problems = merge(args.json, world, inputs.order, job)
        except OSError as e:  # FILE and the parts are as they were
            problems = [f"cannot write {args.json}: {os_error_text(e)}; the records are kept in the journal: "
                        "run the same command with --resume once it can be written"]
    failed, skipped, seen = reporter.failed_inputs, inputs.skipped, inputs.seen
    if dist is not None:
        total = torch.tensor([failed, skipped, len(problems)], dtype=torch.int64)
        dist.all_reduce(total)
        failed, skipped, problem_count = (int(v) for v in total)
        dist.destroy_process_group()
    else:
        problem_count = len(problems)
    for p in problems:
        print(f"s2c crop: error: {p}", file=sys.stderr)
    if rank == 0 and (reporter.tty or failed or problem_count):
        earlier = f" ({skipped} done by an earlier run)" if args.resume else ""
        print(f"s2c crop: {seen} input(s), {seen - failed} ok{earlier}, {failed} failed"
              + (f" ({world} ranks)" if world > 1 else ""), file=sys.stderr)
    return 1 if failed or problem_count else 0
