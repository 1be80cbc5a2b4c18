"""What fuzzing ``s2c crop`` found, each case as it was reported: two crops written to one file, input photos
and other files overwritten, crafted weights files, hangs (link loops, FIFOs), one-line errors, file modes,
long names, exit statuses. Every input's crop and every input photo must come out intact."""
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2c_ops import Cropper
from s2c_ops.cli.crop import inputs as crop_inputs
from s2c_ops.cli.errors import run_command
from s2c_ops.cropping.proposals import SaliencyProposer, create_proposer
from s2c_ops.models import create_model, load
from s2c_ops.models.weights import CheckpointError

from test_crop_cli import ENV, REPO, photo, read_jsonl, run_cli, written_box

crop_run = importlib.import_module("s2c_ops.cli.crop.run")  # the package exports the function run over it
FAST = ["--model", "prior"]  # the geometry prior: no pixels read by the model, fast


def photos(folder: Path, names, size=(96, 64)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        photo(*size, seed=i).save(folder / name)
    return {name: (folder / name).read_bytes() for name in names}


def intact(folder: Path, originals) -> bool:
    return all((folder / name).read_bytes() == data for name, data in originals.items())


@pytest.mark.parametrize("name, save_as", [("i.ico", "ICO"), ("b.xbm", "XBM"), ("j.h5", "JPEG"), ("k.wmf", "JPEG")])
def test_formats_that_would_not_keep_the_crop_are_written_as_png(tmp_path, capsys, name, save_as):
    """Icons were written at icon sizes (records and files disagreed), 1-bit formats and handler stubs
    failed; their crops are PNGs of exactly the recorded size."""
    src = tmp_path / "src"
    src.mkdir()
    image = photo(96, 64, seed=3)
    (image.convert("1") if save_as == "XBM" else image).save(src / name, format=save_as)
    rc, _, err = run_cli(["crop", src / name, "--ratio", "3:2", "--size", "48x32", "--out", tmp_path / "out",
                          "--json", tmp_path / "r.jsonl", *FAST], capsys)
    assert rc == 0, err
    (record,) = read_jsonl(tmp_path / "r.jsonl")
    (output,) = record["outputs"]
    assert output == str(tmp_path / "out" / f"{Path(name).stem}_3x2.png")
    assert Image.open(output).format == "PNG" and Image.open(output).size == (48, 32)


# ---------------------------------------------------------------------------------------------------
# 1. Two inputs, one output name
# ---------------------------------------------------------------------------------------------------
def test_same_stem_other_content_format_gets_its_own_crop(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    photo(120, 80, seed=1).save(src / "x.jpg")
    photo(90, 90, seed=2).save(src / "x.png", format="JPEG")  # a JPEG named .png
    rc, _, err = run_cli(["crop", src / "x.jpg", src / "x.png", "--ratio", "1:1", "--out", out, "--json",
                          tmp_path / "r.jsonl", "--overwrite", *FAST], capsys)
    assert rc == 0, err
    recs = read_jsonl(tmp_path / "r.jsonl")
    assert [r["outputs"] for r in recs] == [[str(out / "x_1x1.jpg")], [str(out / "x_1x1.png")]]
    # each file holds its own input's crop, in the format its name says
    assert Image.open(out / "x_1x1.jpg").format == "JPEG" and Image.open(out / "x_1x1.png").format == "PNG"
    for rec in recs:
        x0, y0, x1, y1 = written_box(rec)
        crop = Image.open(rec["outputs"][0])
        assert crop.size == (x1 - x0, y1 - y0)
        source = Image.open(rec["file"]).convert("RGB").crop((x0, y0, x1, y1))
        assert np.abs(np.asarray(crop.convert("RGB"), np.int16) - np.asarray(source, np.int16)).mean() < 4


def test_resume_never_points_a_record_at_another_inputs_crop(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    photo(120, 80, seed=1).save(src / "x.jpg")
    photo(90, 90, seed=2).save(src / "x.png", format="JPEG")
    args = ["crop", src / "x.jpg", src / "x.png", "--ratio", "1:1", "--out", out, "--json", tmp_path / "r.jsonl",
            *FAST]
    assert run_cli(args, capsys)[0] == 0
    assert run_cli(args + ["--resume"], capsys)[0] == 0
    recs = read_jsonl(tmp_path / "r.jsonl")
    outputs = [o for r in recs for o in r["outputs"]]
    assert len(set(outputs)) == 2 == len(outputs)


def test_names_that_clash_are_found_before_writing(tmp_path, capsys):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    photos(a, ["x.tif"])
    photos(b, ["x.tiff"])  # another extension of one format: other names, no clash
    photos(tmp_path / "c", ["x.tif"])
    rc, _, err = run_cli(["crop", a / "x.tif", b / "x.tiff", tmp_path / "c" / "x.tif", "--ratio", "1:1", "--out",
                          out, "--json", tmp_path / "r.jsonl", *FAST], capsys)
    recs = read_jsonl(tmp_path / "r.jsonl")
    assert rc == 1 and [r["status"] for r in recs] == ["ok", "ok", "error"]
    assert "same names as those of" in recs[2]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["x_1x1.tif", "x_1x1.tiff"]


# ---------------------------------------------------------------------------------------------------
# 2, 3. Inputs and outputs never alias
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_out_equal_to_an_input_folder_is_refused(tmp_path, capsys, overwrite):
    originals = photos(tmp_path / "photos", ["a.jpg", "a_16x9.jpg"])
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--out", tmp_path / "photos", *FAST,
                          *overwrite], capsys)
    assert rc == 2 and "is the --out folder or inside it" in err
    assert intact(tmp_path / "photos", originals) and len(list((tmp_path / "photos").iterdir())) == 2
    rc, _, err = run_cli(["crop", tmp_path / "photos" / "..", "--ratio", "16:9", "--out", tmp_path, *FAST], capsys)
    assert rc == 2  # the same folder under another spelling


def test_inputs_inside_out_are_never_read_nor_replaced(tmp_path, capsys):
    originals = photos(tmp_path / "photos", ["a.jpg", "a_16x9.jpg"])
    out = tmp_path / "photos"
    # by name: the input fails with one line, nothing is written over it
    rc, _, err = run_cli(["crop", out / "a.jpg", out / "a_16x9.jpg", "--ratio", "16:9", "--out", out, "--overwrite",
                          *FAST], capsys)
    failures = [line for line in err.splitlines() if line.startswith("error ")]
    assert rc == 1 and len(failures) == 2 and all("a run never reads what it writes" in f for f in failures)
    assert intact(out, originals)
    # by pattern: files inside --out are not matched
    rc, _, err = run_cli(["crop", str(out / "*.jpg"), "--ratio", "16:9", "--out", out, *FAST], capsys)
    assert rc == 1 and "no file matches this pattern" in err and intact(out, originals)


@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_json_naming_a_photo_leaves_it_whole(tmp_path, capsys, mode):
    originals = photos(tmp_path / "photos", ["a.jpg", "b.jpg"])
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--json", tmp_path / "photos" / "b.jpg",
                          mode, *FAST], capsys)
    assert rc == 2 and "line 1 is not a record of s2c crop" in err and intact(tmp_path / "photos", originals)


@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_json_naming_an_output_keeps_the_journal(tmp_path, capsys, mode):
    """--json named like a crop the run writes: that input fails (one line) and the journal stays a journal
    (the crop replaced it)."""
    photos(tmp_path / "photos", ["a.jpg", "b.jpg"])
    journal = tmp_path / "out" / "a_16x9.jpg"
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--out", tmp_path / "out", "--json", journal,
                          mode, *FAST], capsys)
    assert rc == 1 and f"its output {journal} would replace the journal (--json)" in err
    records = read_jsonl(journal)
    assert [(Path(r["file"]).name, r["status"]) for r in records] == [("a.jpg", "error"), ("b.jpg", "ok")]
    assert (tmp_path / "out" / "b_16x9.jpg").is_file()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_json_naming_a_pipe_is_refused_not_waited_on(tmp_path, capsys, mode):
    photos(tmp_path / "photos", ["a.jpg"])
    os.mkfifo(tmp_path / "j.fifo")
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--json", tmp_path / "j.fifo", mode, *FAST],
                         capsys)
    assert rc == 2 and "is not a regular file (a pipe or a device)" in err


@pytest.mark.parametrize("flag, value, message", [("--top-k", "99999999999999999999", "must be at most 1000"),
                                                  ("--batch-size", "99999999999999999999", "must be at most 4096"),
                                                  ("--workers", "100000", "must be at most 256")])
def test_counts_past_their_bound_are_usage_errors(tmp_path, capsys, flag, value, message):
    """A huge --top-k planned a crop name per rank until memory ran out; a huge --batch-size failed in islice."""
    photos(tmp_path / "photos", ["a.jpg"])
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--out", tmp_path / "out", flag, value, *FAST],
                         capsys)
    assert rc == 2 and message in err


def test_a_file_name_with_a_newline_fails_on_one_line(tmp_path, capsys):
    (tmp_path / "bad\nname.png").write_bytes(b"not an image")
    photos(tmp_path, ["good.jpg"])
    rc, _, err = run_cli(["crop", tmp_path, "--ratio", "16:9", *FAST], capsys)
    assert rc == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error ")]
    assert "bad\\nname.png: " in line


def test_a_new_journal_inside_an_input_folder_is_not_an_input(tmp_path, capsys):
    photos(tmp_path / "photos", ["a.jpg"])
    journal = tmp_path / "photos" / "log.jpg"  # named like an image, inside the folder being listed
    rc, _, err = run_cli(["crop", tmp_path / "photos", "--ratio", "16:9", "--json", journal, *FAST], capsys)
    assert rc == 0, err
    assert [r["file"] for r in read_jsonl(journal)] == [str(tmp_path / "photos" / "a.jpg")]


# ---------------------------------------------------------------------------------------------------
# 4, 7. Weights files and checkpoints from elsewhere
# ---------------------------------------------------------------------------------------------------
def _forged(path: Path, config: dict, fmt: str = "s2cnet/1") -> Path:
    from safetensors.torch import save_file

    save_file({"reduce.weight": torch.zeros(8, 448, 1, 1)}, str(path),
              metadata={"format": fmt, "config": json.dumps(config)})
    return path


@pytest.mark.parametrize("fmt, config", [
    ("s2cnet/1", {"mlp_dim": 1_000_000}),
    ("s2cnet/1", {"num_depth": 100_000}),
    ("s2cnet-geometry-prior/1", {"hidden": 200_000}),
])
def test_forged_config_is_refused_before_any_allocation(tmp_path, fmt, config):
    path = _forged(tmp_path / "w.safetensors", config, fmt)
    assert path.stat().st_size < 20_000
    with pytest.raises(CheckpointError, match="larger than any of the file's 1 tensors"):
        load(path)


def test_forged_negative_size_is_refused(tmp_path):
    path = _forged(tmp_path / "w.safetensors", {"hidden": -1}, "s2cnet-geometry-prior/1")
    with pytest.raises(CheckpointError, match="the stored config does not fit"):
        load(path)


def test_config_that_does_not_fit_the_tensors_is_refused(tmp_path):
    path = _forged(tmp_path / "w.safetensors", {"mlp_dim": 448})  # bounded, but the file has one tensor
    with pytest.raises(CheckpointError, match="missing: "):
        load(path)


def test_forged_nesting_and_a_prior_of_no_box_are_refused(tmp_path):
    """A stored config nested past the JSON reader gave a RecursionError, and a prior of bbox_num 0 loaded
    and failed only when it scored."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    deep = tmp_path / "deep.safetensors"
    save_file({"reduce.weight": torch.zeros(8, 448, 1, 1)}, str(deep),
              metadata={"format": "s2cnet/1", "config": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(CheckpointError, match="nested deeper than any config"):
        load(deep)
    shipped = REPO / "s2c_ops" / "weights" / "geometry_prior.safetensors"
    with safe_open(str(shipped), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    config = dict(json.loads(metadata["config"]), bbox_num=0)
    save_file(tensors, str(tmp_path / "none.safetensors"), metadata=dict(metadata, config=json.dumps(config)))
    with pytest.raises(CheckpointError, match="bbox_num must be a positive int, got 0"):
        load(tmp_path / "none.safetensors")


def test_weights_holding_nan_are_refused(tmp_path):
    """A run that diverged wrote NaN weights: they loaded, every score was NaN, and s2c crop wrote
    "scores": [NaN] (not JSON) with exit 0."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    shipped = REPO / "s2c_ops" / "weights" / "geometry_prior.safetensors"
    with safe_open(str(shipped), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    key = sorted(tensors)[-1]
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match=f"{key} holds NaN or infinite values"):
        load(tmp_path / "nan.safetensors")


def test_loading_weights_draws_nothing_from_the_generator():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load(REPO / "s2c_ops" / "weights" / "geometry_prior.safetensors")
    assert torch.equal(torch.rand(3), expected)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("kind", ["pickle", "random", "empty", "truncated"])
def test_official_bad_files_are_one_line(tmp_path, kind):
    path = tmp_path / "ckpt.pth"
    if kind == "pickle":
        torch.save({"x": _Payload()}, path)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(100)}, str(tmp_path / "full"))
        path.write_bytes((tmp_path / "full").read_bytes()[:200])
    photo().save(tmp_path / "p.png")
    proc = subprocess.run([sys.executable, "-m", "s2c_ops.cli", "crop", str(tmp_path / "p.png"), "--ratio", "1:1",
                           "--official", str(path), "--config", "GAICv1"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a checkpoint that loads with weights_only=True" in lines[0], proc.stderr
    assert "weights_only=False" not in proc.stderr and not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------------------------
# 5, 6. Nothing hangs: link loops, FIFOs
# ---------------------------------------------------------------------------------------------------
def test_recursive_pattern_over_link_loops_ends(tmp_path):
    photos(tmp_path / "dir" / "a", ["p.jpg"])
    photos(tmp_path / "dir" / "b", ["q.jpg"])
    (tmp_path / "dir" / "a" / "loop").symlink_to(tmp_path / "dir")
    (tmp_path / "dir" / "b" / "up").symlink_to(tmp_path / "dir" / "a")
    code = ("import sys; from s2c_ops.cli.crop.inputs import iter_inputs; "
            "[print(e.file) for e in iter_inputs(sys.argv[1:])]")
    for pattern in ("dir/**/*.jpg", "dir/**"):
        proc = subprocess.run([sys.executable, "-c", code, pattern], cwd=tmp_path, env=ENV, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        files = proc.stdout.split()
        assert sorted(os.path.realpath(tmp_path / f) for f in files) == sorted(
            str((tmp_path / "dir" / s).resolve()) for s in ("a/p.jpg", "b/q.jpg"))


def test_pattern_streams_in_folder_order(tmp_path, monkeypatch):
    photos(tmp_path / "d" / "s", ["b.jpg"])
    photos(tmp_path / "d", ["a.jpg", "c.jpg", ".h.jpg"])
    monkeypatch.chdir(tmp_path)
    assert [e.file for e in crop_inputs.iter_inputs(["d/**/*.jpg"])] == ["d/a.jpg", "d/c.jpg", "d/s/b.jpg"]
    assert [e.file for e in crop_inputs.iter_inputs(["d/.*.jpg"])] == ["d/.h.jpg"]
    assert [e.file for e in crop_inputs.iter_inputs([str(tmp_path / "d" / "*" / "b.jpg")])] == [
        str(tmp_path / "d" / "s" / "b.jpg")]


def test_folder_walk_follows_a_link_once(tmp_path):
    photos(tmp_path / "top" / "real", ["a.jpg"])
    (tmp_path / "top" / "link").symlink_to(tmp_path / "top" / "real")
    (tmp_path / "top" / "real" / "back").symlink_to(tmp_path / "top")
    files = [e.file for e in crop_inputs.iter_inputs([str(tmp_path / "top")])]
    assert files == [str(tmp_path / "top" / "link" / "a.jpg")]  # the folder's first name; never twice


def test_fifo_among_inputs_fails_alone(tmp_path):
    photos(tmp_path / "in", ["a.jpg", "c.jpg"])
    os.mkfifo(tmp_path / "in" / "b.jpg")
    proc = subprocess.Popen([sys.executable, "-m", "s2c_ops.cli", "crop", "in", "--ratio", "1:1", "--json",
                             "r.jsonl", "--model", "prior"], cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1
    recs = read_jsonl(tmp_path / "r.jsonl")
    assert [r["status"] for r in recs] == ["ok", "error", "ok"]
    assert recs[1]["error"] == "not a regular file (a FIFO)"
    failures = [line for line in err.splitlines() if line.startswith("error ")]
    assert failures == ["error in/b.jpg: not a regular file (a FIFO)"]


# ---------------------------------------------------------------------------------------------------
# 8, 9. Modes, links and long names
# ---------------------------------------------------------------------------------------------------
def test_outputs_and_journal_modes_follow_the_umask(tmp_path, capsys):
    photos(tmp_path / "in", ["a.jpg"])
    old = os.umask(0o022)
    try:
        args = ["crop", tmp_path / "in", "--ratio", "1:1", "--out", tmp_path / "out", "--show", "--json",
                tmp_path / "r.jsonl", *FAST]
        assert run_cli(args, capsys)[0] == 0
        assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()} == {
            "a_1x1.jpg": 0o644, "a_1x1_show.png": 0o644}
        os.chmod(tmp_path / "r.jsonl", 0o640)
        assert run_cli(args + ["--resume"], capsys)[0] == 0
        assert (tmp_path / "r.jsonl").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_journal_that_is_a_link_stays_one(tmp_path, capsys):
    photos(tmp_path / "in", ["a.jpg", "b.jpg"])
    (tmp_path / "logs").mkdir()
    link = tmp_path / "r.jsonl"
    link.symlink_to(tmp_path / "logs" / "real.jsonl")
    args = ["crop", tmp_path / "in" / "a.jpg", "--ratio", "1:1", "--json", link, *FAST]
    assert run_cli(args, capsys)[0] == 0
    assert run_cli(args[:2] + [tmp_path / "in" / "b.jpg"] + args[2:] + ["--resume"], capsys)[0] == 0
    assert link.is_symlink() and len(read_jsonl(tmp_path / "logs" / "real.jsonl")) == 2


def test_longest_legal_output_name(tmp_path, capsys):
    stem = "p" * (os.pathconf(tmp_path, "PC_NAME_MAX") - len("_1x1.png"))
    photos(tmp_path / "in", [stem + ".png", "q" * 250 + ".png"])
    rc, _, err = run_cli(["crop", tmp_path / "in", "--ratio", "1:1", "--out", tmp_path / "out", "--json",
                          tmp_path / "r.jsonl", *FAST], capsys)
    recs = read_jsonl(tmp_path / "r.jsonl")
    assert rc == 1 and recs[0]["status"] == "ok" and (tmp_path / "out" / f"{stem}_1x1.png").exists()
    # one name too long: the error names the output and why, never a temporary file
    assert recs[1]["status"] == "error" and recs[1]["error"].startswith(f"ratio 1:1: cannot write {tmp_path / 'out'}")
    assert "File name too long [ENAMETOOLONG]" in recs[1]["error"] and ".tmp" not in recs[1]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{stem}_1x1.png"]


# ---------------------------------------------------------------------------------------------------
# 10. Exit statuses and lines
# ---------------------------------------------------------------------------------------------------
def test_paths_below_a_file_are_usage_errors(tmp_path, capsys):
    photo().save(tmp_path / "p.png")
    (tmp_path / "afile").write_text("x")
    for flag in ("--json", "--out"):
        rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", flag, tmp_path / "afile" / "x.jsonl",
                              *FAST], capsys)
        assert rc == 2 and f"{tmp_path / 'afile'} is a file, not a folder" in err


def test_meta_device_is_a_usage_error(tmp_path, capsys):
    photo().save(tmp_path / "p.png")
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--device", "meta", *FAST], capsys)
    assert rc == 2 and "meta device" in err


def test_interrupt_while_starting_is_one_line(tmp_path, capsys, monkeypatch):
    photo().save(tmp_path / "p.png")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(crop_run, "load_model", interrupted)
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", *FAST], capsys)
    assert rc == 130 and err.strip() == "s2c crop: interrupted"


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C as an interactive shell leaves it: a shell's background job starts with SIGINT ignored, and
    then so do the tests run from it and the commands they start."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_interrupt_a_library_swallows_still_stops_the_command(tmp_path, capsys, monkeypatch, ctrl_c_raises):
    # triton's import turns a KeyboardInterrupt raised inside it into an ImportError torch catches
    photo().save(tmp_path / "p.png")
    from s2c_ops.models import registry

    create = registry.create_model

    def swallowing(*args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return create(*args, **kwargs)

    monkeypatch.setattr(registry, "create_model", swallowing)
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--out", tmp_path / "out"], capsys)
    assert rc == 130 and err.strip() == "s2c crop: interrupted"
    assert not list((tmp_path / "out").glob("*"))  # stopped before any crop
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_interrupt_of_a_real_start_up(tmp_path, ctrl_c_raises):
    photo().save(tmp_path / "p.png")
    proc = subprocess.Popen([sys.executable, "-c", "import sys, s2c_ops.cli as c; print('up', flush=True); "
                             "sys.exit(c.main(sys.argv[1:]))", "crop", "p.png", "--ratio", "1:1"],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"  # the package is imported; the command starts (loads the model)
    threading.Timer(0.2, proc.send_signal, (signal.SIGINT,)).start()
    _, err = proc.communicate(timeout=300)
    ours = [line for line in err.splitlines() if line.startswith("s2c crop:")]
    assert proc.returncode == 130 and "Traceback" not in err and len(ours) == 1, err


def test_top_k_is_checked_before_scoring(monkeypatch):
    cropper = Cropper()

    def never(*a, **k):
        raise AssertionError("scored")

    monkeypatch.setattr(cropper, "_score_images", never)
    for bad in (2.5, 0, True, "2"):
        with pytest.raises(ValueError, match="top_k must be a whole number"):
            cropper.crop(torch.zeros(3, 64, 64), "16:9", top_k=bad)


def test_cropper_settings_are_checked_when_made():
    """Wrong settings fail at once with their name, not later inside a crop (a float num_boxes was cut to
    an int, a proposer name failed as "'str' object is not callable")."""
    prior = create_model("prior")
    for kwargs, error, match in ((dict(num_boxes=2.5), TypeError, "num_boxes must be an int, got float"),
                                 (dict(batch_size=2.5), ValueError, "batch_size must be a whole number"),
                                 (dict(batch_size=0), ValueError, "batch_size must be a whole number"),
                                 (dict(proposer=3), TypeError, "proposer must be"),
                                 (dict(proposer=SaliencyProposer), TypeError, "the class SaliencyProposer \\(make one"),
                                 (dict(face_rule=3), TypeError, "face_rule must be a FaceRule"),
                                 (dict(preprocess=3), TypeError, "preprocess must be an OfficialPreprocess")):
        with pytest.raises(error, match=match):
            Cropper(prior, **kwargs)
    with pytest.raises(ValueError, match="unknown proposer"):
        Cropper(prior, "nope")
    assert Cropper(prior, num_boxes=np.int64(3)).num_boxes == 3  # one check of num_boxes everywhere
    with pytest.raises(ValueError, match="a photo on the meta device"):
        Cropper(prior).crop(torch.rand(3, 64, 64, device="meta"), "1:1")
    by_name = Cropper(prior, "image").crop(torch.zeros(3, 64, 96), "1:1")[0].boxes
    assert torch.equal(by_name, Cropper(prior, create_proposer("image")).crop(torch.zeros(3, 64, 96), "1:1")[0].boxes)


def test_free_form_needs_the_least_crop_side():
    cropper = Cropper(create_model("prior"))
    for size in ((1, 1), (15, 300)):
        with pytest.raises(ValueError, match="too small for a free-form crop"):
            cropper.crop(torch.rand(3, *size), "free")
    assert cropper.crop(torch.rand(3, 16, 40), "free")[0].boxes.shape == (1, 4)


def test_run_command_interrupt():
    def func(args):
        raise KeyboardInterrupt

    assert run_command(func, None, "s2c x") == 130


# ---------------------------------------------------------------------------------------------------
# Decided: inverted boxes, sizes past the bomb limit, an unwritable --out found before the model loads
# ---------------------------------------------------------------------------------------------------
def test_inverted_boxes_are_refused(tmp_path, capsys):
    photo().save(tmp_path / "p.png")
    (tmp_path / "b.json").write_text(json.dumps({"p.png": [[50, 50, 10, 10]]}))
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--boxes", tmp_path / "b.json"], capsys)
    assert rc == 2 and "empty or inverted" in err


def test_size_past_the_bomb_limit_is_refused(tmp_path, capsys):
    photo().save(tmp_path / "p.png")
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--size", "65500x65500", "--out",
                          tmp_path / "o"], capsys)
    assert rc == 2 and "decompression-bomb limit" in err and not (tmp_path / "o").exists()


def test_unwritable_out_stops_before_the_model_loads(tmp_path, capsys, monkeypatch):
    photo().save(tmp_path / "p.png")

    def never(args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(crop_run, "load_model", never)
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--out", "/proc/s2c-nowhere"], capsys)
    assert rc == 1 and err.strip().startswith("s2c crop: error: cannot write to --out /proc/s2c-nowhere")


# ---------------------------------------------------------------------------------------------------
# The command against an expectation computed without the package's scoring code
# ---------------------------------------------------------------------------------------------------
class CentreScorer(torch.nn.Module):
    """Scores a crop by how near its centre lies to a point given as fractions of the image's width and
    height (the same in the model's pixels as in the photo's), plus a little for its area."""

    bbox_num = 1

    def __init__(self, fx: float, fy: float) -> None:
        super().__init__()
        self.fx, self.fy = fx, fy
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the scorer a device

    def forward(self, images, crop_boxes, object_boxes, **kwargs):
        from s2c_ops.ops.boxes import boxes_to_rois

        rois = boxes_to_rois(crop_boxes)
        height, width = images.shape[-2:]
        return score_boxes(rois[:, 1:], width, height, self.fx, self.fy)


def score_boxes(boxes, width, height, fx, fy):
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / (2 * width), (boxes[:, 1] + boxes[:, 3]) / (2 * height)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (width * height)
    return -((cx - fx).abs() + (cy - fy).abs()) + 0.01 * area


def expected_box(width, height, ratio, fx, fy):
    """The best of every whole-pixel box of ``ratio`` (within 1%) inside the photo and at least half the
    area of the largest one (the candidates' documented family), each placed as near the point as it can
    be, by the scorer's rule: a brute-force search in the photo's pixels."""
    largest = min(width, height * ratio) * min(height, width / ratio)
    best, best_score = None, -float("inf")
    for h in range(16, height + 1):
        w = round(h * ratio)
        if w > width or abs(w / h / ratio - 1) > 0.01 or w * h < 0.5 * largest:
            continue
        x = min(max(round(fx * width - w / 2), 0), width - w)
        y = min(max(round(fy * height - h / 2), 0), height - h)
        s = float(score_boxes(torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64), width, height, fx, fy))
        if s > best_score:
            best, best_score = (x, y, x + w, y + h), s
    return best


@pytest.mark.parametrize("size, ratio, point", [((400, 300), "16:9", (0.3, 0.6)), ((300, 420), "1:1", (0.7, 0.25)),
                                                ((512, 200), "4:5", (0.15, 0.5))])
def test_crop_matches_an_independent_expectation(tmp_path, capsys, monkeypatch, size, ratio, point):
    """s2c crop with a scorer whose best crop is known in closed form: the record's box and the written crop
    agree, within the candidate grid's step, with a brute-force search over the photo's own pixels (no
    candidates, no Cropper, no model pixels)."""
    from s2c_ops.cli.models import ModelChoice

    scorer = CentreScorer(*point)
    monkeypatch.setattr(crop_run, "load_model", lambda options: ModelChoice(scorer, "centre", "sha256:0"))
    width, height = size
    photo(width, height).save(tmp_path / "p.png")
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", ratio, "--proposer", "image", "--out",
                          tmp_path / "out", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0, err
    (rec,) = read_jsonl(tmp_path / "r.jsonl")
    x1, y1, x2, y2 = expected_box(width, height, rec["ratio"], *point)
    step = max(width, height) / 12  # the candidates' grid is coarser than a pixel
    assert all(abs(a - b) <= step for a, b in zip(rec["boxes"][0], (x1, y1, x2, y2))), rec["boxes"][0]
    crop = Image.open(rec["outputs"][0])
    bx1, by1, bx2, by2 = rec["boxes"][0]
    assert abs(crop.width - (bx2 - bx1)) <= 1 and abs(crop.height - (by2 - by1)) <= 1
    source = np.asarray(Image.open(tmp_path / "p.png"))[round(by1):round(by1) + crop.height,
                                                         round(bx1):round(bx1) + crop.width]
    assert np.abs(np.asarray(crop, np.int16) - source.astype(np.int16)).max() <= 1  # the photo's own pixels
