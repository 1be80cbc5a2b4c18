"""The journal's own logic, without a model or a subprocess: the record schema, reading back (torn lines,
duplicates), the stamp check, consolidating and merging the ranks' parts, the Journal object's steps; and
the options object the command line is read into once."""
import dataclasses
import json
from pathlib import Path

import pytest

from s2c_ops.cli import build_parser
from s2c_ops.cli.crop.args import Job, ratio_arg
from s2c_ops.cli.crop.inputs import Entry
from s2c_ops.cli.crop.journal import (Finished, Journal, JournalError, JournalLock, Stamp, consolidate, merge, scan,
                                      validate)
from s2c_ops.cli.crop.options import CropOptions
from s2c_ops.cli.crop.record import Record
from s2c_ops.cli.errors import UsageError
from s2c_ops.distributed import Ranks

STAMP = Stamp("model A", "default", {"ratios": ["16:9", "1:1"], "top_k": 1, "size": None, "weights": "sha256:aa"})
JOB = Job([ratio_arg("16:9"), ratio_arg("1:1")], 1, None, None, False, False)


def ok(file, ratio_text="16:9", score=0.5, stamp=STAMP):
    return Record(file, "ok", 16 / 9 if ratio_text == "16:9" else 1.0, ratio_text, stamp.model, stamp.proposer,
                  stamp.options, width=40, height=30, boxes=[[0.0, 0.0, 40.0, 22.5]], scores=[score])


def error(file, ratio_text="16:9"):
    return Record(file, "error", 16 / 9, ratio_text, STAMP.model, STAMP.proposer, STAMP.options, error="corrupt")


def write(path: Path, records, torn: str = "") -> Path:
    path.write_text("".join(r.to_line() for r in records) + torn)
    return path


# ---------------------------------------------------------------------------------------------------
# Record
# ---------------------------------------------------------------------------------------------------
def test_record_round_trip_and_key_order():
    for rec in (ok("a.jpg"), error("b.jpg"), dataclasses.replace(error("c.jpg"), width=5, height=6)):
        line = rec.to_line()
        assert line.endswith("\n") and Record.from_line(line.encode()) == rec
    assert list(json.loads(ok("a.jpg").to_line())) == ["file", "status", "width", "height", "ratio", "ratio_text",
                                                      "boxes", "scores", "outputs", "show", "model", "proposer",
                                                      "options"]
    assert list(json.loads(error("b.jpg").to_line())) == ["file", "status", "ratio", "ratio_text", "error", "model",
                                                         "proposer", "options"]


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"file": "a.jpg"}', b'{"file": 3, "status": "ok", '
                                  b'"ratio_text": "1:1"}', b"\xff\xd8\xff\xe0 a JPEG"])
def test_lines_that_are_not_records(line):
    assert Record.from_line(line) is None


@pytest.mark.parametrize("field, value", [("ratio_text", None), ("status", "done"), ("boxes", "zz"),
                                          ("boxes", [[0, 0, 1]]), ("scores", ["high"]), ("width", "big"),
                                          ("width", True), ("height", 2.5), ("height", float("inf")),
                                          ("width", float("nan")), ("scores", [float("inf")]), ("width", 10**400),
                                          ("outputs", [3]), ("options", []),
                                          ("model", 7), ("ratio", [1])])
def test_a_record_with_a_field_of_another_kind_is_none(field, value):
    """A line with a record's keys but a field of another kind is no record: with ``ratio_text`` null a
    --resume kept it beside the input's new record (two records of one input and ratio)."""
    d = json.loads(ok("a.jpg").to_line())
    assert Record.from_line(json.dumps(d).encode()) == ok("a.jpg")
    d[field] = value
    assert Record.from_line(json.dumps(d).encode()) is None


def test_a_line_nested_past_the_parser_s_depth_is_no_record():
    assert Record.from_line(b"[" * 100_000 + b"]" * 100_000) is None


# ---------------------------------------------------------------------------------------------------
# Reading back
# ---------------------------------------------------------------------------------------------------
def test_torn_last_line_is_dropped_and_a_bad_middle_line_is_an_error(tmp_path):
    path = write(tmp_path / "j.jsonl", [ok("a.jpg"), ok("a.jpg", "1:1")], torn='{"file": "b.jpg", "sta')
    assert [r.key for _, r in scan(path)] == [("a.jpg", "16:9"), ("a.jpg", "1:1")]
    path.write_text(ok("a.jpg").to_line() + "garbage\n" + ok("b.jpg").to_line())
    with pytest.raises(JournalError, match="line 2 is not a record"):
        list(scan(path))


def test_latest_record_of_a_key_wins(tmp_path):
    path = write(tmp_path / "j.jsonl", [error("a.jpg"), ok("a.jpg", "1:1"), ok("a.jpg", score=0.9)])
    finished = Finished(str(path))
    try:
        assert finished.record(("a.jpg", "16:9")).scores == [0.9]
        assert finished.done(Entry("a.jpg", "a.jpg"), JOB)  # ok for both ratios, no --out to check
        assert not finished.done(Entry("b.jpg", "b.jpg"), JOB)
    finally:
        finished.close()


def test_foreign_stamp_names_the_difference(tmp_path):
    other = Stamp("model A", "default", dict(STAMP.options, top_k=3))
    path = write(tmp_path / "j.jsonl", [ok("a.jpg"), ok("b.jpg", stamp=other)])
    with pytest.raises(JournalError, match="--top-k: .* was made with 3, this run asks for 1"):
        validate(str(path), STAMP)
    path = write(tmp_path / "k.jsonl", [ok("a.jpg", stamp=Stamp("model B", "default", STAMP.options))])
    with pytest.raises(JournalError, match="model: .* made with model B"):
        validate(str(path), STAMP)


# ---------------------------------------------------------------------------------------------------
# Consolidating and merging
# ---------------------------------------------------------------------------------------------------
def test_consolidate_folds_parts_and_cuts_a_torn_line(tmp_path):
    path = write(tmp_path / "j.jsonl", [error("a.jpg")], torn='{"fi')
    consolidate(str(path))
    assert path.read_text() == error("a.jpg").to_line()
    write(tmp_path / "j.jsonl.rank1", [ok("a.jpg")])  # a later record of the same key, in a part
    write(tmp_path / "j.jsonl.rank0", [ok("b.jpg")])
    consolidate(str(path))
    assert [r for _, r in scan(path)] == [ok("a.jpg"), ok("b.jpg")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl"]


def test_merge_of_ranks_in_input_order(tmp_path):
    path = tmp_path / "j.jsonl"
    write(tmp_path / "j.jsonl.rank0", [ok("c.jpg", "1:1"), ok("c.jpg"), ok("a.jpg"), ok("a.jpg", "1:1")])
    write(tmp_path / "j.jsonl.rank1", [ok("b.jpg", "1:1"), ok("b.jpg")])
    order = {"a.jpg": 0, "b.jpg": 1, "c.jpg": 2, "d.jpg": 3}
    problems = merge(str(path), 3, order, JOB)
    assert [r.key for _, r in scan(path)] == [(f, t) for f in ("a.jpg", "b.jpg", "c.jpg") for t in ("16:9", "1:1")]
    assert problems == [f"rank 2 left no records ({path}.rank2 is missing)", "no record for d.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl"]


# ---------------------------------------------------------------------------------------------------
# The Journal object
# ---------------------------------------------------------------------------------------------------
def test_no_journal_does_nothing():
    with Journal(None, Ranks(), resume=False) as journal:
        journal.open(STAMP, lambda: None)
        journal.append([ok("a.jpg")])
        assert journal.finish({"a.jpg": 0}, JOB) == [] and journal.file is None and journal.finished is None


def test_journal_steps(tmp_path):
    path = tmp_path / "j.jsonl"
    barriers = []
    with Journal(str(path), Ranks(), resume=False) as journal:
        with pytest.raises(JournalError, match="in use by another s2c crop run"):
            JournalLock(str(path))
        journal.open(STAMP, lambda: barriers.append(1))
        journal.append([ok("b.jpg"), ok("b.jpg", "1:1")])
        journal.append([ok("a.jpg"), ok("a.jpg", "1:1")])
        assert not journal.merges and journal.finish({}, JOB) == []
    assert barriers == [1] and not (tmp_path / "j.jsonl.lock").exists()
    with Journal(str(path), Ranks(), resume=True) as journal:  # resumed: merged in input order at the end
        journal.open(STAMP, lambda: None)
        assert journal.finished.done(Entry("a.jpg", "a.jpg"), JOB)
        assert journal.merges and journal.finish({"a.jpg": 0, "b.jpg": 1}, JOB) == []
    assert [r.file for _, r in scan(path)] == ["a.jpg", "a.jpg", "b.jpg", "b.jpg"]
    other = Stamp("model A", "saliency", STAMP.options)
    with Journal(str(path), Ranks(), resume=True) as journal:
        with pytest.raises(UsageError, match="cannot --resume .* object boxes: .* this run uses saliency"):
            journal.open(other, lambda: None)


def test_journal_lock_conflict_is_a_usage_error(tmp_path):
    path = str(tmp_path / "j.jsonl")
    with JournalLock(path):
        with pytest.raises(UsageError, match="in use by another s2c crop run"):
            Journal(path, Ranks(), resume=False).__enter__()
    with Journal(path, Ranks(rank=1, world=2), resume=False):  # only rank 0 holds the lock
        with JournalLock(path):
            pass


# ---------------------------------------------------------------------------------------------------
# The options, read once
# ---------------------------------------------------------------------------------------------------
def options(*argv):
    return CropOptions.from_namespace(build_parser().parse_args(["crop", *map(str, argv)]))


def test_options_are_read_once_into_a_frozen_object(tmp_path):
    args = build_parser().parse_args(["crop", "a.jpg", "--ratio", "16:9", "--ratio", "32:18", "--ratio", "1:1",
                                      "--size", "320x180", "--model", "prior"])
    assert not [v for v in vars(args).values() if hasattr(v, "parse_args")]  # no parser rides in the namespace
    o = CropOptions.from_namespace(args)
    assert [r.text for r in o.ratios] == ["16:9", "1:1"] and o.size == (180, 320) and o.model.name == "prior"
    assert o.device.type == "cpu" and o.ranks == Ranks() and o.proposer_name == "default"
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.top_k = 2
    job = o.job()
    assert job.overwrite is False and [r.text for r in job.ratios] == ["16:9", "1:1"]
    assert options("a.jpg", "--ratio", "1:1", "--json", tmp_path / "j", "--resume").job().overwrite is True


@pytest.mark.parametrize("argv, message", [
    (["--show"], "--show needs --out"),
    (["--resume"], "--resume needs --json"),
    (["--official", "x.pth"], "--official needs --config"),
    (["--config", "GAICv1"], "--config goes with --official"),
    (["--device", "meta"], "--device meta: the meta device"),
])
def test_options_checks_are_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        options("a.jpg", "--ratio", "1:1", *argv)
