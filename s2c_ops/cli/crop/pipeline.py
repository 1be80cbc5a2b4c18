"""``s2c crop``'s pipeline over the input stream, and how it stops (signals, nothing writable).

Per file: open (header only) -> checks (decompression-bomb limit, smallest side) -> decode for the model
-> candidates of each ratio in the upright full-resolution pixels -> one batched scoring call per group of
same-size images -> crops cut from the full-resolution upright image and written atomically -> the
records, reported and appended to the journal. Decoding (one batch ahead) and writing run on ``workers``
threads (Pillow releases the GIL) while the calling thread lists the inputs and scores; records come out
in input order.
"""
import itertools
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from . import decode as decoding
from .args import Job
from .inputs import Entry
from .journal import Stamp
from .record import records_of
from .report import Reporter
from .score import BoxesFile, Outcome, score_outcomes
from .write import safe_write

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
    """A finished future, for ``workers=0``."""

    def __init__(self, fn, *a):
        self.value = fn(*a)

    def result(self):
        return self.value


class Pipeline:
    """Decode -> score -> write -> report for a stream of inputs, ``batch_size`` at a time."""

    def __init__(self, cropper, job: Job, stamp: Stamp, reporter: Reporter, given: Optional[BoxesFile], *,
                 batch_size: int, workers: int) -> None:
        self.cropper, self.job, self.stamp, self.reporter, self.given = cropper, job, stamp, reporter, given
        self.batch_size, self.workers = batch_size, workers

    def _decode(self, entry: Entry) -> Outcome:
        o = Outcome(entry)
        if not entry.error:
            # With --boxes the proposer never runs: no detail for its second look.
            detail = None if self.given is not None else self.cropper._detail_factor
            o.decoded, o.error = decoding.try_decode(entry.path, self.cropper.preprocess, self.job.out is not None,
                                                     decoding.USE_DRAFT, detail)
        return o

    def run(self, entries: Iterator[Entry], stop: Stop) -> None:
        """Takes inputs from the stream until it ends or ``stop`` is set; then the writes in flight are
        finished and reported, and inputs decoded but not scored are dropped. Sets ``stop.reason`` when
        nothing more can be written (an output or the journal)."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="s2c-crop") if self.workers > 0 else None

        def submit(fn, *a):
            return pool.submit(fn, *a) if pool is not None else _Done(fn, *a)

        def next_batch() -> list:
            return [] if stop else [submit(self._decode, e) for e in itertools.islice(entries, self.batch_size)]

        def finish(futures) -> None:
            for f in futures:
                o = f.result()
                self.reporter.add(records_of(o, self.job, self.stamp))
                stop.reason = stop.reason or o.unwritable or self.reporter.journal.error

        pending: list = []
        try:
            decoding_now = next_batch()
            while decoding_now and not stop:
                ahead = next_batch()
                outcomes = [f.result() for f in decoding_now]
                if stop:
                    break
                score_outcomes(self.cropper, outcomes, self.job, self.given)
                written = [submit(safe_write, o, self.job) for o in outcomes]
                finish(pending)
                pending, decoding_now = written, ahead
            finish(pending)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
