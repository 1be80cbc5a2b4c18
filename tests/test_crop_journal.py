"""``s2c crop --json FILE`` as a journal: records kept through SIGKILL, ``--resume``, SIGINT/SIGTERM, disk full
and unwritable outputs, torn lines, changed options, torchrun; and files.DurableAppender under them.
Where a process is involved (killed, signalled, without the right to write) it runs in a subprocess."""
import ctypes
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s2c_ops import cli, files
from s2c_ops.files import DurableAppender, temporaries_in, temporary_tag
from s2c_ops.models.registry import model_description

DEFAULT_DESCRIPTION = model_description("default")

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
RATIOS = ["--ratio", "16:9", "--ratio", "1:1"]


def make_photos(folder: Path, count: int, size=(320, 240)) -> list:
    """``count`` small photos (JPEG and PNG) with a bright blob somewhere; their paths, in listing order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    paths = []
    for i in range(count):
        cx, cy = rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.2, 0.8) * size[1]
        blob = np.exp(-(((x - cx) / 40) ** 2 + ((y - cy) / 30) ** 2))
        pixels = np.stack([60 + 180 * blob, 80 + 60 * y / size[1], 120 - 60 * blob], -1) + rng.normal(0, 6, (*size[::-1], 3))
        path = folder / f"p{i:03d}.{'png' if i % 5 == 4 else 'jpg'}"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def crop_command(*args):
    return [sys.executable, "-m", "s2c_ops.cli", "crop", *map(str, args)]


def leftovers(*folders):
    """Temporary or hidden files below ``folders``."""
    return [p for f in folders for p in Path(f).rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def wait_for_records(path: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Waits until the journal(s) matching ``path`` hold ``count`` lines; the number seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = sum(p.read_bytes().count(b"\n") for p in path.parent.glob(path.name + "*") if p.is_file())
        if lines >= count:
            return lines
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"no {count} records in {timeout} s")


def descendants(pid: int) -> list:
    """The processes below ``pid`` (from /proc): torchrun starts each worker in a session of its own, so
    killing torchrun's process group leaves them running."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL for ``proc`` and everything it started, as a job scheduler kills a job."""
    doomed = [proc.pid] + descendants(proc.pid)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in doomed[1:]):
        assert time.monotonic() < deadline, "the killed workers did not go away"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"


def check_complete(records, photos, out, ratios=("16:9", "1:1")):
    """One ok record per photo and ratio, in input order; every output listed once, present, decodable,
    and nothing else in ``out``."""
    assert [(r["file"], r["ratio_text"]) for r in records] == [(str(p), t) for p in photos for t in ratios]
    assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"][:2]
    outputs = [o for r in records for o in r["outputs"]]
    assert len(outputs) == len(set(outputs)) == len(records)
    for o in outputs:
        with Image.open(o) as im:
            im.load()
    assert sorted(str(p) for p in Path(out).rglob("*") if p.is_file()) == sorted(outputs)


# ---------------------------------------------------------------------------------------------------
# Killed, signalled
# ---------------------------------------------------------------------------------------------------
def test_sigkill_then_resume(tmp_path):
    """A run killed part-way keeps every record it finished; --resume does only the rest: at the end one
    record per input and ratio, every crop once and decodable, no temporary file."""
    photos = make_photos(tmp_path / "src", 40)
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    cmd = crop_command(tmp_path / "src", *RATIOS, "--out", out, "--json", journal, "--workers", "2", "--batch-size", "2")
    proc = subprocess.Popen(cmd, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_records(journal, 12, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "records.jsonl.lock").exists()  # the killed run's lock file: no lock, --resume goes on
    text = journal.read_text()
    whole = text[: text.rfind("\n") + 1]
    before = [json.loads(line) for line in whole.splitlines()]  # every whole line is a record
    assert 12 <= len(before) < 80, "the kill should land part-way"
    done_before = {r["file"] for r in before if r["ratio_text"] == "1:1"}  # inputs with both records
    kept = {o: os.stat(o) for r in before if r["file"] in done_before for o in r["outputs"]}

    proc = subprocess.run(cmd + ["--resume"], env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(journal)
    check_complete(records, photos, out)
    finished = {(r["file"], r["ratio_text"]): r for r in before}
    for r in records:
        if r["file"] in done_before:  # not done again: the same record, the same files untouched
            assert r == finished[r["file"], r["ratio_text"]]
    for o, st in kept.items():
        assert os.stat(o).st_mtime_ns == st.st_mtime_ns and os.stat(o).st_ino == st.st_ino
    assert not leftovers(out, tmp_path / "src") and [p.name for p in tmp_path.glob("records.jsonl*")] == ["records.jsonl"]


@pytest.mark.parametrize("sig, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_signal_stops_cleanly(tmp_path, sig, code, name):
    """The run stops taking inputs, finishes what it is writing, keeps the journal, says how to resume."""
    photos = make_photos(tmp_path / "src", 40)
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    cmd = crop_command(tmp_path / "src", *RATIOS, "--out", out, "--json", journal, "--workers", "2", "--batch-size", "2")
    proc = subprocess.Popen(cmd, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_records(journal, 6, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"s2c crop: stopped by {name}: ") and "--resume" in summary and str(journal) in summary
    text = journal.read_text()
    assert text.endswith("\n")  # no torn line: the journal was closed cleanly
    records = [json.loads(line) for line in text.splitlines()]
    assert 6 <= len(records) < 80 and len(records) % 2 == 0  # whole inputs, both ratios
    assert f"{len(records) // 2} input(s) done this run" in summary
    # every crop on disk has its record, and no partial or temporary file is left
    assert sorted(str(p) for p in out.rglob("*") if p.is_file()) == sorted(o for r in records for o in r["outputs"])
    assert not leftovers(out)

    proc = subprocess.run(cmd + ["--resume"], env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check_complete(read_jsonl(journal), photos, out)


# ---------------------------------------------------------------------------------------------------
# Nothing writable
# ---------------------------------------------------------------------------------------------------
def _drop_root_file_rights():
    """In the child: without CAP_DAC_OVERRIDE (and friends) in its bounding set, root's exec'd process is
    held to the permission bits like anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _as_restricted(cmd):
    """``cmd`` run so that a folder without write permission really refuses writes (EACCES)."""
    if os.geteuid() != 0:
        return dict()
    probe = tempfile.mkdtemp()
    try:
        os.chmod(probe, 0o555)
        result = subprocess.run([sys.executable, "-c", f"open({os.path.join(probe, 'x')!r}, 'w')"],
                                preexec_fn=_drop_root_file_rights, capture_output=True, text=True)
    except OSError as e:
        pytest.skip(f"cannot drop root's file rights here: {e}")
    finally:
        os.chmod(probe, 0o755)
        shutil.rmtree(probe)
    if "PermissionError" not in result.stderr:
        pytest.skip("root keeps its file rights here; no real EACCES to test")
    return dict(preexec_fn=_drop_root_file_rights)


def test_read_only_output_folder(tmp_path):
    """A real EACCES: found before the model loads, with one line naming the folder and the reason; nothing
    is written (no journal, no file in the folder); the same command with --resume finishes once the folder
    is writable."""
    photos = make_photos(tmp_path / "src", 30)
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    out.mkdir()
    os.chmod(out, 0o555)
    cmd = crop_command(tmp_path / "src", *RATIOS, "--out", out, "--json", journal, "--batch-size", "2",
                       "--proposer", "image")
    try:
        proc = subprocess.run(cmd, env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              **_as_restricted(cmd))
    finally:
        os.chmod(out, 0o755)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"s2c crop: error: cannot write to --out {out}: Permission denied [EACCES]"]
    assert not journal.exists() and not list(out.iterdir())

    proc = subprocess.run(cmd + ["--resume"], env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check_complete(read_jsonl(journal), photos, out)


def run_cli(args, capsys):
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_disk_full(tmp_path, capsys, monkeypatch):
    """ENOSPC after a few crops (simulated in the image writer, part of a file written): that input fails
    with a clear record, the run stops, no partial file; --resume completes the run."""
    from s2c_ops.cli.crop import write

    photos = make_photos(tmp_path / "src", 24, size=(96, 64))
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    image_writer = write.image_writer
    calls = []

    def full_disk_writer(image, **options):
        def writer(tmp):
            calls.append(tmp)
            if len(calls) > 5:
                Path(tmp).write_bytes(b"part of a crop")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
            image_writer(image, **options)(tmp)

        return writer

    monkeypatch.setattr(write, "image_writer", full_disk_writer)
    args = ["crop", tmp_path / "src", *RATIOS, "--out", out, "--json", journal, "--batch-size", "2", "--workers", "0",
            "--proposer", "image"]
    rc, _, err = run_cli(args, capsys)
    assert rc == 1
    records = read_jsonl(journal)
    inputs = list(dict.fromkeys(r["file"] for r in records))
    assert inputs == [str(p) for p in photos[: len(inputs)]] and 3 <= len(inputs) <= 6  # stopped early
    failed = [r for r in records if r["status"] == "error"]
    assert failed and failed[0]["error"] == (f"ratio 1:1: cannot write {out / 'p002_1x1.jpg'}: "
                                             "No space left on device [ENOSPC]")
    assert len([line for line in err.splitlines() if line.startswith("error ")]) <= 4
    assert "s2c crop: stopped: cannot write" in err and "--resume" in err.splitlines()[-1]
    ok_outputs = sorted(o for r in records for o in r.get("outputs", []))
    assert len(ok_outputs) == 5 and sorted(str(p) for p in out.iterdir()) == ok_outputs  # nothing partial

    monkeypatch.setattr(write, "image_writer", image_writer)
    rc, _, err = run_cli(args + ["--resume"], capsys)
    assert rc == 0, err
    check_complete(read_jsonl(journal), photos, out)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file size limit on this system")
def test_a_crop_the_disk_takes_only_part_of_fails_and_leaves_nothing(tmp_path):
    """Pillow writing to a file's descriptor does not check a short last write (a disk full at the crop's
    last bytes, here a file size limit): the crop was left truncated under its name and recorded ok. Now
    that input fails with the reason, and nothing of it is left."""
    import resource

    photo = make_photos(tmp_path / "src", 1)[0]
    args = [photo, "--ratio", "1:1", "--proposer", "image", "--workers", "0"]
    subprocess.run(crop_command(*args, "--out", tmp_path / "whole"), check=True, capture_output=True)
    size = (tmp_path / "whole" / "p000_1x1.jpg").stat().st_size
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"

    def limit():  # Python ignores SIGXFSZ: a write past the limit is short, then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (size - 10, size - 10))

    run = subprocess.run(crop_command(*args, "--out", out, "--json", journal), preexec_fn=limit,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    (record,) = read_jsonl(journal)
    assert record["status"] == "error" and "File too large [EFBIG]" in record["error"]
    assert not out.exists() or not any(out.iterdir())


def test_journal_unwritable_stops_the_run(tmp_path, capsys, monkeypatch):
    photos = make_photos(tmp_path / "src", 12, size=(96, 64))
    journal = tmp_path / "records.jsonl"
    write = DurableAppender.write

    def failing(self, text):
        if os.path.getsize(self.path) > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, text)

    monkeypatch.setattr(DurableAppender, "write", failing)
    args = ["crop", tmp_path / "src", *RATIOS, "--json", journal, "--batch-size", "2", "--proposer", "image"]
    rc, _, err = run_cli(args, capsys)
    assert rc == 1
    assert f"s2c crop: stopped: cannot write the journal {journal}: No space left on device [ENOSPC]" in err
    assert len(read_jsonl(journal)) == 2  # the first input's records; the run stopped right after
    monkeypatch.setattr(DurableAppender, "write", write)
    rc, _, err = run_cli(args + ["--resume"], capsys)
    assert rc == 0, err
    assert [(r["file"], r["ratio_text"]) for r in read_jsonl(journal)] == [(str(p), t) for p in photos for t in ("16:9", "1:1")]


# ---------------------------------------------------------------------------------------------------
# Reading the journal back
# ---------------------------------------------------------------------------------------------------
def test_torn_last_line_and_resume(tmp_path, capsys):
    photos = make_photos(tmp_path / "src", 5, size=(96, 64))
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    args = ["crop", tmp_path / "src", *RATIOS, "--out", out, "--json", journal, "--proposer", "image"]
    assert run_cli(args, capsys)[0] == 0
    complete = journal.read_bytes()
    lines = complete.splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # p004's 1:1 record torn: p004 is not done
    (out / "p002_16x9.jpg").unlink()  # p002's records are ok, but an output is gone: not done either
    kept = os.stat(out / "p000_16x9.jpg")
    rc, _, err = run_cli(args + ["--resume"], capsys)
    assert rc == 0, err
    records = read_jsonl(journal)
    check_complete(records, photos, out)
    assert journal.read_bytes() == complete  # the same records (same model, same files), in input order
    assert os.stat(out / "p000_16x9.jpg").st_mtime_ns == kept.st_mtime_ns


def test_damaged_journal_is_not_resumed(tmp_path, capsys):
    make_photos(tmp_path / "src", 2, size=(96, 64))
    journal = tmp_path / "records.jsonl"
    journal.write_text("this is\nnot a journal\n")
    rc, _, err = run_cli(["crop", tmp_path / "src", "--ratio", "1:1", "--json", journal, "--resume"], capsys)
    assert rc == 2 and f"{journal} line 1 is not a record of s2c crop" in err
    assert journal.read_text() == "this is\nnot a journal\n"


@pytest.mark.parametrize("change, message", [
    (["--ratio", "16:9"], "--ratio: {j} was made with 16:9 1:1, this run asks for 16:9"),
    (["--ratio", "1:1", "--ratio", "16:9"], "--ratio: {j} was made with 16:9 1:1, this run asks for 1:1 16:9"),
    ([*RATIOS, "--top-k", "2"], "--top-k: {j} was made with 1, this run asks for 2"),
    ([*RATIOS, "--size", "64x36"], "--size: {j} was made with none, this run asks for 64x36"),
    ([*RATIOS, "--proposer", "saliency"], "object boxes: {j} was made with image, this run uses saliency"),
    ([*RATIOS, "--weights", "{w}"], "model: {j} was made with " + DEFAULT_DESCRIPTION + " (weights sha256:"),
])
def test_resume_with_changed_options_is_an_error(tmp_path, capsys, change, message):
    from s2c_ops.models.prior import GeometryPrior

    make_photos(tmp_path / "src", 3, size=(96, 64))
    journal = tmp_path / "records.jsonl"
    common = ["crop", tmp_path / "src", "--json", journal]
    assert run_cli(common + RATIOS + ["--proposer", "image"], capsys)[0] == 0
    before = journal.read_bytes()
    GeometryPrior.default().save(tmp_path / "prior.safetensors")
    change = [str(a).format(w=tmp_path / "prior.safetensors") for a in change]
    if "--proposer" not in change:
        change += ["--proposer", "image"]
    rc, _, err = run_cli(common + change + ["--resume"], capsys)
    assert rc == 2
    assert f"cannot --resume {journal}: " + message.format(j=journal) in err
    assert "--overwrite" in err
    assert journal.read_bytes() == before


def test_existing_journal_needs_resume_or_overwrite(tmp_path, capsys):
    make_photos(tmp_path / "src", 2, size=(96, 64))
    journal = tmp_path / "records.jsonl"
    args = ["crop", tmp_path / "src", "--ratio", "1:1", "--json", journal, "--proposer", "image"]
    assert run_cli(args, capsys)[0] == 0
    before = journal.read_bytes()
    rc, _, err = run_cli(args, capsys)
    assert rc == 2 and "exists: pass --resume to continue" in err and "--overwrite" in err
    assert journal.read_bytes() == before
    rc, _, err = run_cli(args + ["--resume"], capsys)  # all done: nothing to do, the same file
    assert rc == 0 and journal.read_bytes() == before
    rc, _, _ = run_cli(args + ["--overwrite"], capsys)
    assert rc == 0 and journal.read_bytes() == before  # done again, the same records
    rc, _, err = run_cli(["crop", tmp_path / "src", "--ratio", "1:1", "--resume"], capsys)
    assert rc == 2 and "--resume needs --json" in err


def test_one_run_per_journal(tmp_path, capsys):
    """While another process holds the journal's lock a run stops at once with a usage error and leaves the
    journal alone; once that process is killed (its lock file left behind) the run goes on."""
    make_photos(tmp_path / "src", 2, size=(96, 64))
    journal = tmp_path / "records.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom s2c_ops.cli.crop.journal import JournalLock\n"
         "lock = JournalLock(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(600)", str(journal)],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["crop", tmp_path / "src", "--ratio", "1:1", "--json", journal, "--proposer", "image"]
        for extra in ([], ["--resume"], ["--overwrite"]):
            rc, _, err = run_cli(args + extra, capsys)
            assert rc == 2 and f"{journal} is in use by another s2c crop run" in err, err
            assert not journal.exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (tmp_path / "records.jsonl.lock").exists()
    assert run_cli(args + ["--resume"], capsys)[0] == 0
    assert len(read_jsonl(journal)) == 2 and not (tmp_path / "records.jsonl.lock").exists()


# ---------------------------------------------------------------------------------------------------
# torchrun
# ---------------------------------------------------------------------------------------------------
def test_torchrun_killed_then_resumed(tmp_path):
    """Two CPU ranks, the whole job killed part-way (each rank's part keeps its records), then resumed
    by two ranks: one merged file, one record per input and ratio in input order."""
    photos = make_photos(tmp_path / "src", 40)
    out, journal = tmp_path / "out", tmp_path / "records.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "s2c_ops.cli",
           "crop", str(tmp_path / "src"), *RATIOS, "--out", str(out), "--json", str(journal), "--workers", "1",
           "--batch-size", "2"]
    proc = subprocess.Popen(cmd, env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for_records(journal, 16, proc, timeout=240)
    finally:
        kill_tree(proc)
    parts = sorted(p.name for p in tmp_path.glob("records.jsonl.rank*"))
    assert parts == ["records.jsonl.rank0", "records.jsonl.rank1"] and not journal.exists()
    proc = subprocess.run(cmd + ["--resume"], env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check_complete(read_jsonl(journal), photos, out)
    assert [p.name for p in tmp_path.glob("records.jsonl*")] == ["records.jsonl"]
    assert not leftovers(out)


# ---------------------------------------------------------------------------------------------------
# files.DurableAppender
# ---------------------------------------------------------------------------------------------------
def test_every_rank_has_read_a_resumed_journal_before_rank_0_folds_its_parts_in(tmp_path, capsys, monkeypatch):
    """--resume under torchrun: each rank checks FILE and the parts a killed run left, and rank 0 folds the
    parts into FILE and removes them. A rank still reading found a part gone (ENOENT: the resumed run
    failed, seen once in CI); here two ranks in threads, rank 1 slow to read."""
    import threading

    from s2c_ops.cli.crop import journal as J
    from s2c_ops.distributed import Ranks

    make_photos(tmp_path / "src", 4, size=(96, 64))
    path = tmp_path / "records.jsonl"
    rc, _, err = run_cli(["crop", tmp_path / "src", *RATIOS, "--json", path, "--proposer", "image"], capsys)
    assert rc == 0, err
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))  # what a killed torchrun run leaves: FILE and a part per rank
    Path(f"{path}.rank0").write_bytes(b"".join(lines[2:5]))
    Path(f"{path}.rank1").write_bytes(b"".join(lines[5:]))
    scan = J.scan

    def slow_scan(source):
        if threading.current_thread().name == "rank1":
            time.sleep(0.3)  # rank 0 would fold the parts in meanwhile
        yield from scan(source)

    monkeypatch.setattr(J, "scan", slow_scan)
    monkeypatch.setattr(J, "check_stamp", lambda rec, stamp, source: None)
    barrier, errors = threading.Barrier(2, timeout=30), []

    def rank(r):
        journal = J.Journal(str(path), Ranks(rank=r, world=2), resume=True)
        try:
            journal.open(None, barrier.wait)
            journal.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"rank {r}: {e!r}")
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,), name=f"rank{r}") for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert path.read_bytes().count(b"\n") == len(lines)  # every record folded into FILE
    assert [p.stat().st_size for p in sorted(tmp_path.glob("records.jsonl.rank*"))] == [0, 0]  # this run's parts


def test_appender_cuts_off_a_failed_write_and_syncs(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "log.jsonl"
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    log = DurableAppender(path, interval=0.05)
    log.write("one\n")
    deadline = time.monotonic() + 5
    while not synced and time.monotonic() < deadline:  # synced by the thread, without another write
        time.sleep(0.01)
    assert synced
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        log.write("two and more\n")
    monkeypatch.setattr(files.os, "write", real_write)
    log.write("three\n")
    log.close()
    log.close()
    assert path.read_text() == "one\nthree\n"
    again = DurableAppender(path, truncate=True)
    again.close()
    assert path.read_text() == ""  # truncate=True starts the file again
    with pytest.raises(OSError):  # closed for good: a write after close fails
        again.write("four\n")


def test_temporaries_in(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".a.jpg.k2j_9x0q.tmp").write_bytes(b"x")
    (tmp_path / ".b_16x9.png.abcdefgh.tmp").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    new = f".{temporary_tag('c' * 250 + '.jpg')}.x1y2z3w4.tmp"  # what write_atomic names them now: short
    (tmp_path / new).write_bytes(b"x")
    assert temporaries_in(tmp_path) == {temporary_tag("a.jpg"): [".a.jpg.k2j_9x0q.tmp"],
                                        temporary_tag("b_16x9.png"): [".b_16x9.png.abcdefgh.tmp"],
                                        temporary_tag("c" * 250 + ".jpg"): [new]}
    assert temporaries_in(tmp_path / "missing") == {}
