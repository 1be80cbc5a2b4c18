"""s2c_ops.files.write_atomic: renamed into place, unique temporary names, no clobbering, no leftovers."""
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

from s2c_ops.files import write_atomic, write_json_atomic, write_text_atomic


def _write(text):
    def writer(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    return writer


def test_replaces_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    write_atomic(path, _write("one"))
    write_atomic(path, _write("two"), durable=True)
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["out.txt"]


def test_no_clobber(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "first")
    with pytest.raises(FileExistsError, match="out.txt exists"):
        write_atomic(path, _write("second"), overwrite=False)
    assert path.read_text() == "first" and os.listdir(tmp_path) == ["out.txt"]


def test_failed_writer_leaves_nothing(tmp_path):
    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "out.txt", broken)
    assert os.listdir(tmp_path) == []


def test_concurrent_writers_use_their_own_temporary_files(tmp_path):
    path, seen, barrier = tmp_path / "same.json", [], threading.Barrier(8)

    def writer(i):
        def write(tmp):
            seen.append(tmp)
            barrier.wait()  # all eight temporary files exist at once
            with open(tmp, "w") as f:
                f.write(str(i))

        write_atomic(path, write)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 8
    assert path.read_text() in {str(i) for i in range(8)}
    assert os.listdir(tmp_path) == ["same.json"]


def test_json(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"a": [1, 2]})
    assert (tmp_path / "x.json").read_text().replace(" ", "").replace("\n", "") == '{"a":[1,2]}'


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.txt").st_mode & 0o777 == 0o666 & ~umask


def test_replaced_files_keep_their_mode(tmp_path):
    path = tmp_path / "kept.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and os.stat(path).st_mode & 0o777 == 0o640


def test_a_writer_that_makes_the_file_anew_gets_the_mode_too(tmp_path):
    """safetensors' save_file makes its file anew (mode 0600 whatever the umask): the mode is set after it."""
    from safetensors.torch import save_file

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.safetensors", lambda tmp: save_file({"x": torch.zeros(2)}, tmp))
    finally:
        os.umask(old)
    path = tmp_path / "kept.safetensors"
    path.write_bytes(b"")
    os.chmod(path, 0o664)
    write_atomic(path, lambda tmp: save_file({"x": torch.zeros(2)}, tmp))
    assert os.stat(tmp_path / "new.safetensors").st_mode & 0o777 == 0o644
    assert os.stat(path).st_mode & 0o777 == 0o664


def test_links_replaced_or_followed(tmp_path):
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("target")
    link.symlink_to(target.name)
    write_text_atomic(link, "through", follow_symlinks=True)
    assert link.is_symlink() and target.read_text() == "through"
    write_text_atomic(link, "replaced")  # by default the link itself is replaced, never what it points to
    assert not link.is_symlink() and link.read_text() == "replaced" and target.read_text() == "through"


def test_longest_legal_name(tmp_path):
    name = "n" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 4) + ".jpg"  # 255 characters on most file systems
    write_text_atomic(tmp_path / name, "x")
    assert os.listdir(tmp_path) == [name]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file size limit on this system")
@pytest.mark.parametrize("kind", ["image", "torch"])
def test_a_file_the_disk_takes_only_part_of_is_an_error(tmp_path, kind):
    """Pillow and torch.save given a path do not check a short last write (a disk full at the file's last
    bytes; here a file size limit): the writers of image_writer and torch_writer raise, and write_atomic
    leaves nothing."""
    script = f"""
import io, os, resource, sys
import numpy as np, torch
from PIL import Image
from s2c_ops.files import image_writer, torch_writer, write_atomic
image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
obj = {{"weights": torch.randn(50000)}}
writer = image_writer(image, format="JPEG", quality=90) if {kind!r} == "image" else torch_writer(obj)
whole = os.path.join(sys.argv[1], "whole")
writer(whole)
limit = os.path.getsize(whole) - 10
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: short write, then EFBIG
target = os.path.join(sys.argv[1], "part")
try:
    write_atomic(target, writer)
except OSError as e:
    print("raised", e.errno == 27 or "File too large" in str(e))
print(sorted(os.listdir(sys.argv[1])))
"""
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["raised True", "['whole']"]
