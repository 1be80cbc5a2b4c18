"""``s2c crop``'s inputs, listed as a stream: files, folders (recursive) and globs, de-duplicated, in order;
the checks that need the whole list (output names that clash) run on the stream too, on every rank."""
import fnmatch
import glob
import itertools
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from PIL import Image

from .args import Job


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


class Reserved:
    """What a run writes, and so never reads as an input: the ``--out`` folder (everything below it) and
    the journal's files (FILE, FILE.lock, FILE.rank<r>). Paths are compared after resolving links."""

    def __init__(self, out: Optional[str], journal: Optional[str]) -> None:
        self.out = os.path.realpath(out) if out else None
        self.journal = os.path.realpath(journal) if journal else None
        # The journal's names as given and resolved: a path whose name starts with neither, and that is no
        # link, is none of its files (spares resolving every planned output's path).
        self._names = (os.path.basename(journal), os.path.basename(self.journal)) if journal else ()

    def holds(self, path: str) -> bool:
        real = os.path.realpath(path)
        if self.out is not None and (real == self.out or real.startswith(self.out.rstrip(os.sep) + os.sep)):
            return True
        return self.journal_holds(path)

    def journal_holds(self, path: str) -> bool:
        """Whether ``path`` is one of the journal's files."""
        if self.journal is None or (not os.path.basename(path).startswith(self._names) and not os.path.islink(path)):
            return False
        real = os.path.realpath(path)
        if real.startswith(self.journal):
            return re.fullmatch(r"(\.lock|\.rank\d+)?", real[len(self.journal):]) is not None
        return False


NOTHING_RESERVED = Reserved(None, None)


def _folders(top: str, reserved: Reserved) -> Iterator[Tuple[str, str, List[os.DirEntry]]]:
    """(folder, its path relative to ``top``, its entries sorted by name) for ``top`` and every folder below
    it, depth first, without hidden and reserved folders. Links to folders are followed, but no folder is
    entered twice: a link loop ends, and a folder linked twice is listed once."""
    seen = set()
    stack = [(top, "")]
    while stack:
        folder, sub = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # unreadable, or gone since it was listed
            continue
        yield folder, sub, entries
        below = [e for e in entries if not e.name.startswith(".") and _is_folder(e) and not reserved.holds(e.path)]
        stack += [(e.path, os.path.join(sub, e.name)) for e in reversed(below)]


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walk(folder: str, reserved: Reserved, extensions: set) -> Iterator[Tuple[str, str]]:
    """(path, sub-folder relative to ``folder``) of the image files below ``folder``, sorted, one folder
    at a time."""
    for _, sub, entries in _folders(folder, reserved):
        for e in entries:
            if (not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in extensions
                    and not _is_folder(e) and not reserved.holds(e.path)):
                yield e.path, sub


def _matches(name: str, pattern: str) -> bool:
    """glob's rule for one name: hidden names match only a pattern that starts with a dot."""
    return (not name.startswith(".") or pattern.startswith(".")) and fnmatch.fnmatchcase(name, pattern)


def _glob(pattern: str, reserved: Reserved) -> Iterator[str]:
    """The paths ``pattern`` matches (glob's syntax, ``**`` for any number of folders), as a stream, one
    folder at a time in name order, never inside ``reserved``. ``**`` follows links to folders but enters
    no folder twice, so a link loop ends; the folders being searched are a stack, not Python's recursion,
    so no depth of folders is too deep."""
    parts = pattern.split(os.sep)
    fixed = 0
    while fixed < len(parts) - 1 and not glob.has_magic(parts[fixed]):
        fixed += 1
    root = os.sep.join(parts[:fixed])
    if pattern.startswith(os.sep) and not root:
        root = os.sep
    seen: set = set()
    stack = [_glob_in(root, parts[fixed:], reserved, seen)]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
        elif isinstance(step, str):
            yield step
        else:
            stack.append(_glob_in(*step, reserved, seen))


def _glob_in(folder: str, parts: List[str], reserved: Reserved, seen: set) -> Iterator[Union[str, tuple]]:
    """What ``parts`` matches in ``folder``, in order: a path (a match), or ``(folder, parts)`` to search
    next (the caller does, before taking the next step here)."""
    head, rest = parts[0], parts[1:]
    try:
        with os.scandir(folder or os.curdir) as it:
            entries = sorted(it, key=lambda e: e.name)
        st = os.stat(folder or os.curdir)
    except OSError:
        return
    join = (lambda name: os.path.join(folder, name)) if folder else (lambda name: name)
    if head == "**":
        key = (st.st_dev, st.st_ino, len(parts))
        if key in seen:
            return
        seen.add(key)
        if not rest:  # "dir/**": the folder and everything below it
            yield folder or os.curdir
            return
        yield folder, rest
        for e in entries:
            if not e.name.startswith(".") and _is_folder(e) and not reserved.holds(e.path):
                yield join(e.name), parts
        return
    for e in entries:
        if not _matches(e.name, head) or reserved.holds(e.path):
            continue
        if not rest:
            yield join(e.name)
        elif _is_folder(e):
            yield join(e.name), rest


def _listed(inputs: Sequence[str], reserved: Reserved, extensions: set,
            note: Callable[[str], None]) -> Iterator[Tuple[Entry, str]]:
    """(entry, identity) for every file the arguments name, duplicates included."""
    for arg in inputs:
        if os.path.isdir(arg):
            empty = True
            for path, sub in _walk(arg, reserved, extensions):
                empty = False
                yield Entry(path, path, sub), os.path.realpath(path)
            if empty:
                note(f"no image files in folder {arg}")
        elif os.path.exists(arg):
            error = ("it is inside the --out folder or is the --json journal: a run never reads what it writes"
                     if reserved.holds(arg) else None)
            yield Entry(arg, arg, error=error), os.path.realpath(arg)
        elif glob.has_magic(arg):
            found = False
            for m in _glob(arg, reserved):
                if os.path.isdir(m):
                    for path, _ in _walk(m, reserved, extensions):
                        found = True
                        yield Entry(path, path), os.path.realpath(path)
                else:
                    found = True
                    yield Entry(m, m), os.path.realpath(m)
            if not found:
                yield Entry(arg, error="no file matches this pattern"), "pattern:" + arg
        else:
            yield Entry(arg, error="no such file or folder"), "missing:" + arg


def iter_inputs(inputs: Sequence[str], reserved: Reserved = NOTHING_RESERVED,
                note: Callable[[str], None] = lambda text: None) -> Iterator[Entry]:
    """The inputs, de-duplicated, in order, as a stream; ``note`` gets remarks (an empty folder). Nothing
    ``reserved`` holds is listed: a file it holds, given by name, is an input that fails."""
    extensions = _image_extensions()
    seen = set()
    for entry, key in _listed(inputs, reserved, extensions, note):
        if key not in seen:
            seen.add(key)
            yield entry


def mark_clashes(entries: Iterable[Entry], job: Job, reserved: Reserved = NOTHING_RESERVED) -> Iterator[Entry]:
    """Marks inputs whose outputs would have the names of an earlier input's, or of the journal's files
    (``reserved``). Every rank runs this on the whole stream, so the outcome does not depend on sharding."""
    owner: Dict[str, str] = {}
    for entry in entries:
        if job.out is not None and not entry.error:
            planned = job.planned_paths(entry)
            keys = [os.path.normcase(os.path.abspath(p)) for p in planned]
            clash = next((owner[k] for k in keys if k in owner), None)
            journal = next((p for p in planned if reserved.journal_holds(p)), None)
            if journal is not None:
                entry.error = f"its output {journal} would replace the journal (--json): give --json another name"
            elif clash is not None:
                entry.error = f"its outputs would have the same names as those of {clash}; process them separately"
            else:
                for k in keys:
                    owner[k] = entry.file
        yield entry


def check_existing(entry: Entry, job: Job) -> None:
    """Without --overwrite, marks an input that already has an output, before any work."""
    if job.out is None or job.overwrite or entry.error:
        return
    existing = next((p for p in job.planned_paths(entry) if os.path.exists(p)), None)
    if existing is not None:
        entry.error = f"output {existing} exists (pass --overwrite to replace it)"


class Inputs:
    """A rank's inputs as a stream, listed once (every rank lists them all, in the same order, and takes
    every world-th), without those ``finished`` (a :class:`~s2c_ops.cli.crop.journal.Finished`) says are
    done, counting what it sees; with ``keep_order`` also the input order (file -> number), for merging the
    journal."""

    def __init__(self, inputs: Sequence[str], reserved: Reserved, job: Job, rank: int, world: int,
                 note: Callable[[str], None] = lambda text: None, keep_order: bool = False) -> None:
        listing = mark_clashes(iter_inputs(inputs, reserved, note), job, reserved)
        first = next(listing, None)
        self.empty = first is None
        self.listing = itertools.chain([first], listing) if first is not None else iter(())
        self.job, self.rank, self.world = job, rank, world
        self.finished = None  # set once the journal is open
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
