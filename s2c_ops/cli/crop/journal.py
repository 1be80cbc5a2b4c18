"""``s2c crop``'s records and its journal (``--json FILE``).

Records are appended to the journal as each input finishes (:class:`~s2c_ops.files.DurableAppender`:
written at once, synced every few seconds). Under torchrun rank r appends to ``FILE.rank<r>`` and rank 0
merges the parts into FILE at the end. Reading a journal back drops a torn last line (a kill in the middle
of a write); for one key (file, ratio) the latest record wins, "latest" being file order within FILE, and
FILE before the parts (a run merges or consolidates the parts into FILE before it appends anything new,
and within one run an input belongs to one rank).

One run at a time per journal: rank 0 holds :class:`JournalLock` (an ``flock`` on ``FILE.lock``) from
before it reads FILE to the end; the OS lets go of it when the process ends, so a killed run's lock file
stops nothing.

``--resume``: every rank checks that the records were made with this run's :class:`Stamp`; rank 0 folds
the parts of a killed torchrun run into FILE (:func:`consolidate`); each rank then skips the inputs
:class:`Finished` says are done, and at the end FILE is rewritten in input order (:func:`merge`).
"""
import fcntl
import glob
import json
import os
import re
from contextlib import suppress
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ...files import DurableAppender, temporaries_in, temporary_tag, write_atomic
from .args import Job
from .inputs import Entry
from ..models import ModelChoice
from .score import Outcome

SYNC_INTERVAL_S = 2.0  # the journal reaches the disk at most this long after a record
Key = Tuple[str, str]  # (file, ratio text)


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
    size = list(job.size) if job.size is not None else None
    return Stamp(model.description, proposer,
                 {"ratios": [r.text for r in job.ratios], "top_k": job.top_k, "size": size, "weights": model.digest})


def _round(values, digits: int) -> list:
    return [round(float(v), digits) for v in values]


def records_of(o: Outcome, job: Job, stamp: Stamp) -> List[dict]:
    out = []
    d = o.decoded
    for r in job.ratios:
        rec = {"file": o.entry.file}
        result = o.error or o.entry.error or o.results.get(r.text, "not processed")
        if isinstance(result, tuple):
            boxes, scores = result
            rec.update(status="ok", width=d.width, height=d.height, ratio=r.value, ratio_text=r.text,
                       boxes=[_round(b, 3) for b in boxes.tolist()], scores=_round(scores.tolist(), 6),
                       outputs=o.outputs.get(r.text, []), show=o.shows.get(r.text))
        else:
            rec.update(status="error", ratio=r.value, ratio_text=r.text, error=result)
            if d is not None:
                rec.update(width=d.width, height=d.height)
        rec.update(model=stamp.model, proposer=stamp.proposer, options=stamp.options)
        out.append(rec)
    return out


def lines(records: List[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


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


def scan(path: str) -> Iterator[Tuple[int, dict]]:
    """(byte offset, record) of every whole line of a journal. A last line without its newline is a torn
    write and is left out; any other line that is not a record is a :class:`JournalError`."""
    with open(path, "rb") as f:
        offset, number = 0, 0
        for line in f:
            number += 1
            if not line.endswith(b"\n"):
                return
            if line.strip():
                rec = _record(line)
                if rec is None:
                    raise JournalError(f"{path} line {number} is not a record of s2c crop (is it the right file?)")
                yield offset, rec
            offset += len(line)


def _record(line: bytes) -> Optional[dict]:
    """The record a journal line holds, or None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(rec, dict) and isinstance(rec.get("file"), str) and "ratio_text" in rec and "status" in rec
    return rec if ok else None


def is_journal(path: str) -> bool:
    """Whether the file ``path`` is empty or starts with a record of s2c crop: what ``--overwrite`` may
    replace (a photo or any other file given as ``--json`` by mistake is never emptied)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    return not head or _record(head.split(b"\n", 1)[0]) is not None


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


def check_stamp(rec: dict, stamp: Stamp, path: str) -> None:
    """A :class:`JournalError` naming the first difference between ``rec``'s run and this one."""
    options = rec.get("options")
    if not isinstance(options, dict):
        raise JournalError(f"its records do not name their options (written before --resume existed?): {rec['file']}")
    for key, (flag, show) in _OPTIONS.items():
        if options.get(key) != stamp.options[key]:
            raise JournalError(f"{flag}: {path} was made with {show(options.get(key))}, this run asks for "
                               f"{show(stamp.options[key])}")
    if rec.get("model") != stamp.model or options.get("weights") != stamp.options["weights"]:
        raise JournalError(f"model: {path} was made with {rec.get('model')} (weights {options.get('weights')}), "
                           f"this run uses {stamp.model} (weights {stamp.options['weights']})")
    if rec.get("proposer") != stamp.proposer:
        raise JournalError(f"object boxes: {path} was made with {rec.get('proposer')}, this run uses {stamp.proposer}")


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
            index[rec["file"], rec["ratio_text"]] = (n, offset)
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

    def record(self, key: Key) -> Optional[dict]:
        at = self.index.get(key)
        if at is None:
            return None
        self._file.seek(at[1])
        return json.loads(self._file.readline())

    def done(self, entry: Entry, job: Job) -> bool:
        """Whether ``entry``'s latest records are ok for every ratio and, with --out (--show), its outputs
        (previews) are this run's names and exist."""
        if entry.path is None:
            return False
        for r in job.ratios:
            rec = self.record((entry.file, r.text))
            if rec is None or rec.get("status") != "ok":
                return False
            if job.out is None:
                continue
            outputs = rec.get("outputs") or []
            if not outputs or len(outputs) != len(rec.get("boxes") or []):
                return False
            want = job.crop_paths(entry, r, len(outputs))
            if job.show:
                outputs, want = outputs + [rec.get("show") or ""], want + [job.show_path(entry, r)]
            if [os.path.normpath(p) for p in outputs] != [os.path.normpath(p) for p in want]:
                return False
            if not all(os.path.isfile(p) for p in outputs):
                return False
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
