"""``s2c crop``, the command: options read once (:mod:`.options`), then the run: the journal's lock, the
model, the journal opened, the pipeline over this rank's inputs (:mod:`.pipeline`), the journal finished,
one summary line. The pieces, in the order an input meets them, are described in :mod:`s2c_ops.cli.crop`."""
import argparse
import math
import os
import signal
import sys
import tempfile
import warnings

import torch
from PIL import Image

from ...cropping.candidates import FREE
from ...distributed import ProcessGroup
from ..errors import Failure
from ..models import load_model
from .inputs import Inputs
from .journal import Journal, run_stamp, unwritable
from .options import CropOptions
from .pipeline import SIGNAL_NAMES, Pipeline, Stop, stopping_on_signals
from .report import Reporter
from .write import os_error_text


def command(args: argparse.Namespace) -> int:
    """``s2c crop``: its exit status (see ``s2c crop --help``)."""
    return crop(CropOptions.from_namespace(args))


def crop(options: CropOptions) -> int:
    with Journal(options.json, options.ranks, options.resume) as journal:
        return _run(options, journal)


def _check_out(folder: str) -> None:
    """A --out folder nothing can be written to is found before the model loads (every rank looks)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise Failure(f"cannot write to --out {folder}: {os_error_text(e)}") from None


def _size_notes(options: CropOptions) -> None:
    if options.size is None or options.ranks.rank != 0:
        return
    h, w = options.size
    for r in options.ratios:
        if r.value != FREE and abs(math.log(w / h / r.value)) > math.log(1.01):
            print(f"s2c crop: note: --size {w}x{h} (ratio {w / h:.4g}) differs from --ratio {r.text} ({r.value:.4g}); "
                  "those crops are stretched to exactly that size", file=sys.stderr)


def _run(options: CropOptions, journal: Journal) -> int:
    rank, world = options.ranks.rank, options.ranks.world
    _size_notes(options)
    if options.out:
        _check_out(options.out)
    from ...cropping.cropper import Cropper
    from ...cropping.proposals import create_proposer

    model = load_model(options.model)
    cropper = Cropper(model.module, create_proposer(options.proposer) if options.proposer else None,
                      batch_size=options.batch_size, device=options.device)
    job = options.job()
    stamp = run_stamp(job, model, options.proposer_name)
    reporter = Reporter(rank == 0 and sys.stderr.isatty(), not options.json and not sys.stdout.isatty(), journal)
    note = (lambda text: reporter.message(f"s2c crop: note: {text}")) if rank == 0 else (lambda text: None)
    stop = Stop()
    with reporter, stopping_on_signals(stop), ProcessGroup(options.ranks) as group:
        inputs = Inputs(options.inputs, options.reserved, job, rank, world, note, keep_order=journal.merges)
        if inputs.empty:
            raise Failure("no input images")
        try:
            journal.open(stamp, group.barrier)
        except OSError as e:
            raise Failure(unwritable(options.json, e)) from None
        inputs.finished = journal.finished
        pipeline = Pipeline(cropper, job, stamp, reporter, options.boxes, batch_size=options.batch_size,
                            workers=options.workers)
        try:
            with warnings.catch_warnings():
                # Pillow warns for images past MAX_IMAGE_PIXELS; they fail here with a clear message instead.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                pipeline.run(iter(inputs), stop)
        except KeyboardInterrupt:  # a second signal: what was in flight is finished or dropped, nothing partial
            stop.signal = stop.signal or signal.SIGINT
        finally:
            reporter.close()
        stop.reason = stop.reason or journal.error
        if stop:
            print(_stopped_line(stop, options, journal, reporter, inputs), file=sys.stderr)
            return 128 + stop.signal if stop.signal is not None else 1
        group.barrier()
        problems = journal.finish(inputs.order or {}, job)
        failed, skipped, problem_count = group.sum(torch.tensor([reporter.failed_inputs, inputs.skipped,
                                                                 len(problems)])).tolist()
    for p in problems:
        print(f"s2c crop: error: {p}", file=sys.stderr)
    if rank == 0 and (reporter.tty or failed or problem_count):
        earlier = f" ({skipped} done by an earlier run)" if options.resume else ""
        print(f"s2c crop: {inputs.seen} input(s), {inputs.seen - failed} ok{earlier}, {failed} failed"
              + (f" ({world} ranks)" if world > 1 else ""), file=sys.stderr)
    return 1 if failed or problem_count else 0


def _stopped_line(stop: Stop, options: CropOptions, journal: Journal, reporter: Reporter, inputs: Inputs) -> str:
    rank, world = options.ranks.rank, options.ranks.world
    why = f"stopped by {SIGNAL_NAMES[stop.signal]}" if stop.signal is not None else f"stopped: {stop.reason}"
    where = f" (rank {rank} of {world})" if world > 1 else ""
    done = f"{reporter.count} input(s) done this run ({reporter.failed_inputs} failed)"
    if inputs.skipped:
        done += f", {inputs.skipped} by an earlier one"
    if journal.file is not None:
        fix = "" if stop.signal is not None else "fix that, then "
        how = f"records in {journal.file}; to finish, {fix}run the same command with --resume"
    else:
        how = "no --json journal: pass --json FILE to be able to --resume; rerunning redoes every input"
    return f"s2c crop: {why}{where}: {done}; {how}"
