"""Writing files atomically: the one helper every writer of the package uses (weights, records, crops,
previews, logs), and the :class:`Leftovers` of killed writers; and :class:`DurableAppender`, for files that
grow a line at a time (``s2c crop``'s journal).

The content goes to a temporary file with a unique name in the target's folder (so concurrent writers,
e.g. torchrun ranks, never share one) and is then renamed into place: readers see the old file or the
new one, never a part. The temporary file is removed when writing fails.
"""
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import threading
from typing import Any, Callable, Dict, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def file_in_the_way(path: PathLike) -> Optional[str]:
    """The nearest existing folder of ``path``'s that is a file (``a`` for ``a/b/x.json``), where nothing
    can be written below it; ``None`` when there is none."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return None if os.path.isdir(folder) else folder


def not_a_file_to_write(path: PathLike) -> Optional[str]:
    """Why nothing can be written as the file ``path``, said to follow the path in a message (" is a
    folder", " is not a regular file ...", ": a is a file, not a folder"); ``None`` when it can. A pipe is
    refused: opening one to write waits for a reader for ever."""
    if os.path.isdir(path):
        return " is a folder"
    if os.path.exists(path) and not os.path.isfile(path):
        return " is not a regular file (a pipe or a device): give a file to write"
    blocked = file_in_the_way(path)
    return f": {blocked} is a file, not a folder" if blocked else None


def not_a_folder_to_write(path: PathLike, wanted: str = "a folder to write into") -> Optional[str]:
    """Why nothing can be written into the folder ``path`` (made when missing), said to follow the path in a
    message (" is a file: give ``wanted``", ": a is a file, not a folder"); ``None`` when it can."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f" is a file: give {wanted}"
    blocked = file_in_the_way(path)
    return f": {blocked} is a file, not a folder" if blocked else None


def write_atomic(path: PathLike, writer: Callable[[str], None], *, overwrite: bool = True,
                 durable: bool = False, follow_symlinks: bool = False) -> None:
    """``writer(tmp)`` writes the file at the path it is given (a short unique temporary name beside
    ``path``, ending ``.tmp``: pass the format explicitly where a library infers it from the extension); it
    is then renamed to ``path``.

    ``overwrite=False`` never replaces an existing ``path`` (``FileExistsError``; the check and the
    rename are one atomic step where the file system has hard links). ``durable=True`` flushes the file
    and its folder to the disk (fsync) before returning. ``follow_symlinks=True`` writes a ``path`` that is
    a symbolic link to the file it points to (otherwise the link itself is replaced). The file gets the
    mode of the file it replaces, or a new file's mode under the process's umask. Missing folders are
    created.
    """
    path = os.fspath(path)
    if follow_symlinks:
        path = os.path.realpath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{temporary_tag(os.path.basename(path))}.", suffix=".tmp")
    mode = _mode_for(path)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    try:
        writer(tmp)
        # Again: a writer that makes the file anew (safetensors' save_file does) gives it its own mode.
        os.chmod(tmp, mode)
        if durable:
            _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if path exists
            except FileExistsError:
                raise FileExistsError(f"{path} exists") from None
            except OSError:  # no hard links on this file system
                if os.path.exists(path):
                    raise FileExistsError(f"{path} exists") from None
                os.replace(tmp, path)
        if durable:
            _fsync_folder(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: str) -> int:
    """The permission bits of the file ``path`` replaces, or those a new file gets (0666 less the umask)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def temporary_tag(name: str) -> str:
    """The part of :func:`write_atomic`'s temporary names that names the file each is to become: a short
    digest of that name, so that a temporary name stays short whatever the target's length."""
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:12]


# write_atomic's temporary names: "." + temporary_tag(target) + "." + mkstemp's 8 random characters + ".tmp";
# and those of releases before 1.0: "." + the target's name + "." + 8 random characters + ".tmp".
_TEMPORARY = re.compile(r"\.([0-9a-f]{12})\.[a-z0-9_]{8}\.tmp")
_TEMPORARY_NAMED = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def temporaries_in(folder: PathLike) -> Dict[str, List[str]]:
    """The temporary files of :func:`write_atomic` in ``folder`` (a killed process leaves them), by the
    :func:`temporary_tag` of the file each was to become:
    ``{temporary_tag("a.jpg"): [".3f1c0a9b2e7d.k2j_9x0q.tmp"]}``."""
    found: Dict[str, List[str]] = {}
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return found
    for name in names:
        m = _TEMPORARY.fullmatch(name)
        tag = m.group(1) if m else None
        if tag is None:
            named = _TEMPORARY_NAMED.fullmatch(name)
            tag = temporary_tag(named.group(1)) if named else None
        if tag is not None:
            found.setdefault(tag, []).append(name)
    return found


class Leftovers:
    """The temporary files of :func:`write_atomic` that a killed process left beside its outputs: each is
    removed (:meth:`remove`) when its output is written again. Every folder is listed once, at its first
    output."""

    def __init__(self) -> None:
        self._found: Dict[str, Dict[str, List[str]]] = {}
        self._lock = threading.Lock()

    def remove(self, path: str) -> None:
        folder, name = os.path.split(path)
        folder = folder or "."
        with self._lock:
            if folder not in self._found:
                self._found[folder] = temporaries_in(folder)
            stale = self._found[folder].pop(temporary_tag(name), [])
        for tmp in stale:
            try:
                os.unlink(os.path.join(folder, tmp))
            except FileNotFoundError:
                pass


def image_writer(image: Any, **options: Any) -> Callable[[str], None]:
    """A :func:`write_atomic` writer of a PIL ``image`` (``options`` for ``Image.save``, ``format`` among
    them): encoded in memory, then written by a Python file, which raises where the disk takes only part of
    it. (Pillow writing to a file's descriptor does not check for a short last write: on a full disk, or
    past a file size limit, it returns and leaves the file truncated.)"""

    def writer(tmp: str) -> None:
        encoded = io.BytesIO()
        image.save(encoded, **options)
        with open(tmp, "wb") as f:
            f.write(encoded.getbuffer())

    return writer


def torch_writer(obj: Any) -> Callable[[str], None]:
    """A :func:`write_atomic` writer of ``torch.save(obj)`` through a Python file, which raises where the disk
    takes only part of it (``torch.save`` given a path does not check its last writes either)."""

    def writer(tmp: str) -> None:
        import torch

        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return writer


def write_text_atomic(path: PathLike, text: str, **kwargs: Any) -> None:
    """:func:`write_atomic` of a UTF-8 text."""

    def writer(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, writer, **kwargs)


def write_json_atomic(path: PathLike, payload: Any, **kwargs: Any) -> None:
    """:func:`write_atomic` of ``payload`` as indented JSON."""
    write_text_atomic(path, json.dumps(payload, indent=1), **kwargs)


class DurableAppender:
    """Appends text to ``path`` (created, or emptied with ``truncate=True``). Every :meth:`write` reaches
    the operating system at once, so a killed process loses nothing it wrote; a thread syncs the file to
    the disk (fsync) within ``interval`` seconds of a write, and :meth:`close` syncs it too, so a crash
    of the machine loses at most the last ``interval`` seconds. A write that fails part-way (a full
    disk) is cut off again: the file never ends in a part of one."""

    def __init__(self, path: PathLike, *, truncate: bool = False, interval: float = 2.0) -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        new = truncate or not os.path.exists(self.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self._fd = os.open(self.path, flags, 0o666)
        self._dirty = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        if new:
            _fsync_folder(folder)
        self._syncer = threading.Thread(target=self._sync_every, args=(interval,), daemon=True, name="fsync")
        self._syncer.start()

    def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise
        with self._lock:
            self._dirty = True

    def sync(self) -> None:
        with self._lock:
            if self._dirty and self._fd >= 0:
                os.fsync(self._fd)
                self._dirty = False

    def _sync_every(self, interval: float) -> None:
        while not self._closing.wait(interval):
            try:
                self.sync()
            except OSError:  # close() syncs again and raises it
                pass

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._syncer.join()
        try:
            self.sync()
        finally:
            with self._lock:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "DurableAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without folder descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
