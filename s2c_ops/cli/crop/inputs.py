"""``s2c crop``'s inputs, listed as a stream: files, folders (recursive) and globs, de-duplicated, in order;
the checks that need the whole list (output names that clash) run on the stream too, on every rank."""
import glob
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

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


def _inside(path: str, folder: Optional[str]) -> bool:
    if folder is None:
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(folder: str, skip: Optional[str], extensions: set) -> Iterator[Tuple[str, str]]:
    """(path, sub-folder relative to ``folder``) of the image files below ``folder``, sorted, one folder
    at a time."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(os.path.join(root, d), skip))
        for name in sorted(files):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                continue
            yield os.path.join(root, name), os.path.relpath(root, folder) if root != folder else ""


def _listed(inputs: Sequence[str], skip: Optional[str], extensions: set,
            note: Callable[[str], None]) -> Iterator[Tuple[Entry, str]]:
    """(entry, identity) for every file the arguments name, duplicates included."""
    for arg in inputs:
        if os.path.isdir(arg):
            empty = True
            for path, sub in _walk(arg, skip, extensions):
                empty = False
                yield Entry(path, path, sub), os.path.realpath(path)
            if empty:
                note(f"no image files in folder {arg}")
        elif os.path.exists(arg):
            yield Entry(arg, arg), os.path.realpath(arg)
        elif glob.has_magic(arg):
            found = False
            for m in sorted(glob.iglob(arg, recursive=True)):
                if os.path.isdir(m):
                    for path, _ in _walk(m, skip, extensions):
                        found = True
                        yield Entry(path, path), os.path.realpath(path)
                elif not _inside(m, skip):
                    found = True
                    yield Entry(m, m), os.path.realpath(m)
            if not found:
                yield Entry(arg, error="no file matches this pattern"), "pattern:" + arg
        else:
            yield Entry(arg, error="no such file or folder"), "missing:" + arg


def iter_inputs(inputs: Sequence[str], skip: Optional[str] = None,
                note: Callable[[str], None] = lambda text: None) -> Iterator[Entry]:
    """The inputs, de-duplicated, in order, as a stream; ``note`` gets remarks (an empty folder)."""
    extensions = _image_extensions()
    seen = set()
    for entry, key in _listed(inputs, skip, extensions, note):
        if key not in seen:
            seen.add(key)
            yield entry


def mark_clashes(entries: Iterable[Entry], job: Job) -> Iterator[Entry]:
    """Marks inputs whose outputs would have the names of an earlier input's. Every rank runs this on the
    whole stream, so the outcome does not depend on sharding."""
    owner: Dict[str, str] = {}
    for entry in entries:
        if job.out is not None and not entry.error:
            keys = [os.path.normcase(os.path.abspath(p)) for p in job.planned_paths(entry)]
            clash = next((owner[k] for k in keys if k in owner), None)
            if clash is not None:
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
