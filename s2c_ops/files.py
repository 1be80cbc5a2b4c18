"""Writing files atomically: the one helper every writer of the package uses (weights, records, crops,
previews, logs).

The content goes to a temporary file with a unique name in the target's folder (so concurrent writers,
e.g. torchrun ranks, never share one) and is then renamed into place: readers see the old file or the
new one, never a part. The temporary file is removed when writing fails.
"""
import json
import os
import tempfile
from typing import Any, Callable, Union

PathLike = Union[str, "os.PathLike[str]"]


def write_atomic(path: PathLike, writer: Callable[[str], None], *, overwrite: bool = True,
                 durable: bool = False) -> None:
    """``writer(tmp)`` writes the file at the path it is given (a unique temporary name beside ``path``,
    ending ``.tmp``: pass the format explicitly where a library infers it from the extension); it is then
    renamed to ``path``.

    ``overwrite=False`` never replaces an existing ``path`` (``FileExistsError``; the check and the
    rename are one atomic step where the file system has hard links). ``durable=True`` flushes the file
    and its folder to the disk (fsync) before returning. Missing folders are created.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
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


def write_text_atomic(path: PathLike, text: str, **kwargs: Any) -> None:
    """:func:`write_atomic` of a UTF-8 text."""

    def writer(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, writer, **kwargs)


def write_json_atomic(path: PathLike, payload: Any, **kwargs: Any) -> None:
    """:func:`write_atomic` of ``payload`` as indented JSON."""
    write_text_atomic(path, json.dumps(payload, indent=1), **kwargs)


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
