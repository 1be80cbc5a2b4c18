"""``s2c crop``'s journal (``--json FILE``): :class:`Journal`, what a run opens, appends its records to and
finishes; and what it is made of (the lock, the parts of torchrun ranks, reading back, ``--resume``'s index
and checks, the merge). ``HELP`` states the rules to users; the records are :mod:`.record`'s.

Reading a journal back drops a torn last line (a kill in the middle of a write); for one key (file, ratio)
the latest record wins, "latest" being file order within FILE, and FILE before the parts (a run merges or
consolidates the parts into FILE before it appends anything new, and within one run an input belongs to
one rank).
"""
import fcntl
import glob
import os
import re
from contextlib import suppress
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ...distributed import Ranks
from ...files import DurableAppender, temporaries_in, temporary_tag, write_atomic
from ..errors import UsageError
from ..models import ModelChoice
from .args import Job
from .inputs import Entry
from .record import Key, Record, lines
from .write import os_error_text

SYNC_INTERVAL_S = 2.0  # the journal reaches the disk at most this long after a record

HELP = """\
--json FILE, the journal:
  Each record is appended to FILE once its input's crops are written, in input order, and
  flushed; FILE is synced to the disk every 2 s and at exit. Writing overlaps the scoring of the
  next batch, so the records of up to two batches of inputs may be missing after a kill even
  though their crops exist: --resume does those inputs again (and replaces their outputs). A torn
  last line, from a kill in the middle of a write, is dropped when FILE is read back. Under torchrun
  each rank appends to FILE.rank<r>; rank 0 merges the parts into FILE at the end (input order,
  one record per input and ratio) and removes them. An existing FILE is an error unless --resume
  (continue it) or --overwrite (start it again) is given; a FILE whose first line is not a record
  of s2c crop (a photo, any other file) is never replaced or continued. FILE is rewritten with its
  mode kept, through a link when it is one. One run at a time per FILE: a second run
  on a FILE in use stops at once with a usage error (the lock, on FILE.lock, is held by the OS for
  the running process: a killed run leaves the file behind but no lock, and --resume goes on).

--resume (needs --json FILE):
  Continues the run that wrote FILE (and its FILE.rank<r> parts, if it was killed under torchrun).
  An input is skipped when its latest records are ok for every ratio and, with --out, its outputs
  (and with --show its previews) are this run's file names and exist; the others are processed
  (again), replacing outputs of theirs that a killed run left. At the end FILE is rewritten
  atomically with one record per input and ratio, in input order (records of files that are no
  longer among the inputs are kept, after them). The records must have been made with the same
  ratios (as written, in order), --top-k, --size, model (its description and weights digest) and
  object boxes (--proposer, or the --boxes file's name); otherwise nothing is done and the run ends
  with a usage error naming the difference. Not compared: --out and --show (inputs whose outputs
  are not there are processed again), --device, --batch-size, --workers and the inputs themselves
  (new inputs are processed). Works under torchrun, with any number of ranks.
"""


def unwritable(path: str, error: OSError) -> str:
    """The one line of a journal that cannot be written."""
    return f"cannot write the journal {path}: {os_error_text(error)}"


class JournalError(ValueError):
    """A journal that this run cannot continue; the message says why."""


class JournalLock:
    """An exclusive lock on the journal ``path`` for this run (a context manager): ``path.lock``, locked with
    ``flock``, removed when the run lets go. Raises :class:`JournalError` when another run holds it."""

    def __init__(self, path: str) -> None:
        self.path = path + ".lock"
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(self.path, "a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The holder may have removed the file between our open and our flock: then it is not the lock.
            if not os.path.samestat(os.fstat(self._file.fileno()), os.stat(self.path)):
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            self._file.close()
            raise JournalError(f"{path} is in use by another s2c crop run (it holds {self.path}): wait for it "
                               "to end, or give another --json FILE") from None

    def __enter__(self) -> "JournalLock":
        return self

    def __exit__(self, *exc) -> None:
        with suppress(FileNotFoundError):
            os.remove(self.path)
        self._file.close()


class Stamp(NamedTuple):
    """What every record of a run carries besides its result, and what ``--resume`` compares."""

    model: str
    proposer: str
    options: dict


def run_stamp(job: Job, model: ModelChoice, proposer: str) -> Stamp:
    size = [job.size[1], job.size[0]] if job.size is not None else None  # [W, H], as --size is written
    return Stamp(model.description, proposer,
                 {"ratios": [r.text for r in job.ratios], "top_k": job.top_k, "size": size, "weights": model.digest})


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------
def part_path(path: str, rank: int) -> str:
    return f"{path}.rank{rank}"


def parts_of(path: str) -> List[str]:
    """The ``FILE.rank<r>`` parts that exist, by rank."""
    found = []
    for p in glob.glob(glob.escape(path) + ".rank*"):
        m = re.fullmatch(r"\.rank(\d+)", p[len(path):])
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def scan(path: str) -> Iterator[Tuple[int, Record]]:
    """(byte offset, record) of every whole line of a journal. A last line without its newline is a torn
    write and is left out; any other line that is not a record is a :class:`JournalError`."""
    with open(path, "rb") as f:
        offset, number = 0, 0
        for line in f:
            number += 1
            if not line.endswith(b"\n"):
                return
            if line.strip():
                rec = Record.from_line(line)
                if rec is None:
                    raise JournalError(f"{path} line {number} is not a record of s2c crop (is it the right file?)")
                yield offset, rec
            offset += len(line)


def is_journal(path: str) -> bool:
    """Whether the file ``path`` is empty or starts with a record of s2c crop: what ``--overwrite`` may
    replace (a photo or any other file given as ``--json`` by mistake is never emptied)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    return not head or Record.from_line(head.split(b"\n", 1)[0]) is not None


def _complete_size(path: str) -> int:
    """The size of ``path`` without a torn last line."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
        return 0


_OPTIONS = {  # option in the records -> (flag, how to show its value)
    "ratios": ("--ratio", lambda v: " ".join(v) if isinstance(v, list) else str(v)),
    "top_k": ("--top-k", str),
    "size": ("--size", lambda v: "none" if v is None else "x".join(map(str, v)) if isinstance(v, list) else str(v)),
}


def check_stamp(rec: Record, stamp: Stamp, path: str) -> None:
    """A :class:`JournalError` naming the first difference between ``rec``'s run and this one."""
    options = rec.options
    if not isinstance(options, dict):
        raise JournalError(f"its records do not name their options (written before --resume existed?): {rec.file}")
    for key, (flag, show) in _OPTIONS.items():
        if options.get(key) != stamp.options[key]:
            raise JournalError(f"{flag}: {path} was made with {show(options.get(key))}, this run asks for "
                               f"{show(stamp.options[key])}")
    if rec.model != stamp.model or options.get("weights") != stamp.options["weights"]:
        raise JournalError(f"model: {path} was made with {rec.model} (weights {options.get('weights')}), "
                           f"this run uses {stamp.model} (weights {stamp.options['weights']})")
    if rec.proposer != stamp.proposer:
        raise JournalError(f"object boxes: {path} was made with {rec.proposer}, this run uses {stamp.proposer}")


def validate(path: str, stamp: Stamp) -> None:
    """Every record in FILE and its parts was made with ``stamp`` (else :class:`JournalError`)."""
    for source in ([path] if os.path.exists(path) else []) + parts_of(path):
        for _, rec in scan(source):
            check_stamp(rec, stamp, source)


def _index(sources: List[str]) -> Dict[Key, Tuple[int, int]]:
    """(source number, offset) of the latest record of each key, keys in the order first seen."""
    index: Dict[Key, Tuple[int, int]] = {}
    for n, source in enumerate(sources):
        for offset, rec in scan(source):
            index[rec.key] = (n, offset)
    return index


def _rewrite(path: str, sources: List[str], sort: Optional[Callable[[Key], tuple]] = None) -> Dict[Key, Tuple[int, int]]:
    """Writes FILE (atomically, synced) with the latest record of each key of ``sources``, in first-seen
    order or sorted by ``sort``; returns the index it wrote."""
    target = os.path.realpath(path)  # a journal that is a link stays one: the file it names is rewritten
    folder, name = os.path.split(target)
    _remove([os.path.join(folder, tmp) for tmp in temporaries_in(folder).get(temporary_tag(name), [])])  # a killed rewrite's
    index = _index(sources)
    keys = sorted(index, key=sort) if sort is not None else list(index)
    handles = [open(s, "rb") for s in sources]
    try:
        def writer(tmp: str) -> None:
            with open(tmp, "wb") as out:
                for key in keys:
                    n, offset = index[key]
                    handles[n].seek(offset)
                    out.write(handles[n].readline())

        write_atomic(target, writer, overwrite=True, durable=True)
    finally:
        for h in handles:
            h.close()
    return index


def _remove(paths: List[str]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def start_fresh(path: str, world: int) -> None:
    """Rank 0 of a run without --resume: removes the parts of an earlier run (and, under torchrun, an
    earlier FILE: this run's parts become FILE at the end)."""
    _remove(parts_of(path) + ([path] if world > 1 and os.path.exists(path) else []))


def consolidate(path: str) -> None:
    """Rank 0 of a resumed run: FILE alone holds the latest record of every key, without a torn line."""
    parts = parts_of(path)
    if parts:
        _rewrite(path, ([path] if os.path.exists(path) else []) + parts)
        _remove(parts)
    elif os.path.exists(path):
        size = _complete_size(path)
        if size != os.path.getsize(path):
            os.truncate(path, size)


def merge(path: str, world: int, order: Dict[str, int], job: Job) -> List[str]:
    """Rank 0 at the end: FILE and the ranks' parts into FILE, one record per input and ratio in input
    order (records of other files after them, as found); the parts are removed. Returns the problems
    (a rank's part missing, inputs without records)."""
    parts = [part_path(path, r) for r in range(world)] if world > 1 else []
    problems = [f"rank {r} left no records ({p} is missing)" for r, p in enumerate(parts) if not os.path.exists(p)]
    parts = [p for p in parts if os.path.exists(p)]
    ratio_order = {r.text: i for i, r in enumerate(job.ratios)}
    last = len(order)
    index = _rewrite(path, ([path] if os.path.exists(path) else []) + parts,
                     sort=lambda key: (order.get(key[0], last), ratio_order.get(key[1], len(ratio_order))))
    problems += [f"no record for {file}" for file in order if any((file, r.text) not in index for r in job.ratios)]
    _remove(parts)
    return problems


def open_journal(path: str, rank: int, world: int, resume: bool) -> DurableAppender:
    """The file this process appends its records to: FILE itself (continued on --resume), or its own
    part under torchrun."""
    if world > 1:
        return DurableAppender(part_path(path, rank), truncate=True, interval=SYNC_INTERVAL_S)
    return DurableAppender(path, truncate=not resume, interval=SYNC_INTERVAL_S)


class Finished:
    """The records in FILE when a resumed run starts (after :func:`consolidate`): which inputs are done."""

    def __init__(self, path: str) -> None:
        self.index = _index([path]) if os.path.exists(path) else {}
        self._file = open(path, "rb") if self.index else None

    def record(self, key: Key) -> Optional[Record]:
        at = self.index.get(key)
        if at is None:
            return None
        self._file.seek(at[1])
        return Record.from_line(self._file.readline())

    def done(self, entry: Entry, job: Job) -> bool:
        """Whether ``entry``'s latest records are ok for every ratio and, with --out (--show), its outputs
        (previews) are this run's names and exist."""
        if entry.path is None:
            return False
        for r in job.ratios:
            rec = self.record((entry.file, r.text))
            if rec is None or not rec.ok:
                return False
            if job.out is None:
                continue
            outputs = rec.outputs
            if not outputs or len(outputs) != len(rec.boxes):
                return False
            want = job.crop_paths(entry, r, len(outputs))
            if job.show:
                outputs, want = outputs + [rec.show or ""], want + [job.show_path(entry, r)]
            if [os.path.normpath(p) for p in outputs] != [os.path.normpath(p) for p in want]:
                return False
            if not all(os.path.isfile(p) for p in outputs):
                return False
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Journal:
    """The journal of one run (``path=None``: the run keeps none, and every step does nothing), in three
    steps. Entering takes the lock (rank 0; another run holding it is a
    :class:`~s2c_ops.cli.errors.UsageError`, found before the model loads). :meth:`open`, once the run's
    :class:`Stamp` is known: a resumed journal's records are checked against it by every rank (a difference
    is a UsageError), then rank 0 folds a killed run's parts in (:func:`consolidate`) or clears an earlier run's
    (:func:`start_fresh`), and each rank opens what it appends to and, on ``--resume``, the index of the
    inputs done (:attr:`finished`). :meth:`finish` at the end: rank 0 merges (:func:`merge`). Leaving syncs
    and closes everything and lets go of the lock."""

    def __init__(self, path: Optional[str], ranks: Ranks, resume: bool) -> None:
        self.path, self.rank, self.world, self.resume = path, ranks.rank, ranks.world, resume
        self.finished: Optional[Finished] = None
        self.error: Optional[str] = None  # set when a record could not be written: the run stops
        self._lock: Optional[JournalLock] = None
        self._appender: Optional[DurableAppender] = None

    @property
    def file(self) -> Optional[str]:
        """The file this process appends to: FILE, or its part under torchrun."""
        if self.path is None:
            return None
        return self.path if self.world == 1 else part_path(self.path, self.rank)

    def __enter__(self) -> "Journal":
        if self.path is not None and self.rank == 0:
            try:
                self._lock = JournalLock(self.path)
            except JournalError as e:
                raise UsageError(str(e)) from None
        return self

    def open(self, stamp: Stamp, barrier: Callable[[], None]) -> None:
        """Raises UsageError (a journal --resume cannot continue) or OSError (it cannot be written)."""
        if self.path is None:
            return
        if self.resume:
            try:
                validate(self.path, stamp)
            except JournalError as e:
                raise UsageError(f"cannot --resume {self.path}: {e}. Resume with the same options, or start again "
                                 "with --overwrite instead of --resume") from None
            # Every rank reads FILE and the parts before rank 0 folds the parts in and removes them.
            barrier()
        if self.rank == 0:
            consolidate(self.path) if self.resume else start_fresh(self.path, self.world)
        barrier()
        self._appender = open_journal(self.path, self.rank, self.world, self.resume)
        if self.resume:
            self.finished = Finished(self.path)

    def append(self, records: List[Record]) -> None:
        if self._appender is None or self.error is not None:
            return
        try:
            self._appender.write(lines(records))
        except OSError as e:
            self.error = unwritable(self._appender.path, e)

    def close(self) -> None:
        """Syncs and closes what :meth:`open` opened (an error syncing is :attr:`error`)."""
        if self._appender is not None:
            try:
                self._appender.close()
            except OSError as e:
                self.error = self.error or unwritable(self._appender.path, e)
        if self.finished is not None:
            self.finished.close()

    @property
    def merges(self) -> bool:
        """Whether :meth:`finish` rewrites FILE in input order (rank 0 of a resumed or torchrun run)."""
        return self.path is not None and self.rank == 0 and (self.resume or self.world > 1)

    def finish(self, order: Dict[str, int], job: Job) -> List[str]:
        """FILE merged in input order when :attr:`merges`; the problems, one line each."""
        if not self.merges:
            return []
        try:
            return merge(self.path, self.world, order, job)
        except OSError as e:  # FILE and the parts are as they were
            return [f"cannot write {self.path}: {os_error_text(e)}; the records are kept in the journal: run the "
                    "same command with --resume once it can be written"]

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        finally:
            if self._lock is not None:
                self._lock.__exit__(*exc)
