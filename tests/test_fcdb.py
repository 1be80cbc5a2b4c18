"""FCDB: both layouts, boxes past the border, the validation list, s2c eval's IoU / BDE and its baselines."""
import json

import pytest
import torch

from conftest import SHARED
from s2c_ops import cli
from s2c_ops.data import fcdb
from s2c_ops.data.fcdb import FCDB, FCDBError, fcdb_splits, is_fcdb, read_fcdb, validation_files
from synthetic import make_fcdb

FCDB_DIR = SHARED / "data" / "FCDB"


def test_shared_layout_and_border_boxes(tmp_path):
    files = make_fcdb(tmp_path, 4, past_border=True)
    photos, report = read_fcdb(tmp_path, "train")
    assert [p.file for p in photos] == files
    assert report.clipped == 4 and report.dropped == 1 and sorted(report.photos) == sorted(files[:2])  # crop + 3 pairs
    first = photos[0]
    assert float(first.crop[2]) == 320.0  # clipped to the border
    assert len(photos[1].pairs) == 3 and photos[1].votes.tolist()[0] == [4.0, 1.0]  # the dropped pair is gone
    item = FCDB(tmp_path, "train")[0]
    assert item["image"].shape == (3, 256, 352) and item["resized"].max() <= 255
    assert item["geometry"].original == (240, 320)
    with pytest.raises(FCDBError, match="has no FCDB split 'test'; its splits: train, val, fit"):
        read_fcdb(tmp_path, "test")
    assert fcdb_splits(tmp_path) == ["train", "val", "fit"]


def test_release_layout_joins_rankings(tmp_path):
    files = make_fcdb(tmp_path, 6, layout="release")
    assert is_fcdb(tmp_path)
    train, _ = read_fcdb(tmp_path, "train")
    test, _ = read_fcdb(tmp_path, "test")
    assert [p.file for p in train] == files[:3] and [p.file for p in test] == files[3:]
    assert all(len(p.pairs) == 3 for p in train + test)
    assert (train[0].crop[2:] - train[0].crop[:2]).tolist() == [192.0, 144.0]
    assert fcdb_splits(tmp_path) == ["train", "test", "val", "fit"]


def test_validation_split_and_errors(tmp_path):
    files = make_fcdb(tmp_path, 5)
    val, _ = read_fcdb(tmp_path, "val", validation=files[:2])
    fit, _ = read_fcdb(tmp_path, "fit", validation=files[:2])
    assert [p.file for p in val] == files[:2] and [p.file for p in fit] == files[2:]
    (tmp_path / "images" / files[3]).unlink()
    with pytest.raises(FCDBError, match=f"1 annotated photos are missing \\(first: {files[3]}\\)"):
        read_fcdb(tmp_path)
    (tmp_path / "train.json").write_text("[{")
    with pytest.raises(FCDBError, match="not valid JSON"):
        read_fcdb(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps([{"file": files[0], "width": 3, "height": 4, "crop": [1, 2]}]))
    with pytest.raises(FCDBError, match=r"expected \[x, y, w, h\]"):
        read_fcdb(tmp_path)
    # Wrong types were Python tracebacks (TypeError): now one line naming the entry.
    entry = {"file": files[0], "width": 3, "height": 4, "crop": [0, 0, 2, 2]}
    pair = {"crop_0": [0, 0, 2, 2], "crop_1": [1, 1, 2, 2], "votes_0": 1, "votes_1": 2}
    for change, says in (({"width": None}, "width must be a whole number > 0, got None"),
                         ({"height": [1]}, r"height must be a whole number > 0, got \[1\]"),
                         ({"width": 0}, "width must be a whole number > 0"),
                         ({"width": 2.5}, "width must be a whole number > 0, got 2.5"),
                         ({"pairs": None}, "the pairs must be a list, got None"),
                         ({"pairs": 5}, "the pairs must be a list, got 5"),
                         ({"pairs": [dict(pair, votes_0=None)]}, "pair 0: votes_0 must be a number, got None"),
                         ({"pairs": [dict(pair, votes_1="x")]}, "pair 0: votes_1 must be a number, got 'x'")):
        (tmp_path / "train.json").write_text(json.dumps([dict(entry, **change)]))
        with pytest.raises(FCDBError, match=f"entry 0: {says}"):
            read_fcdb(tmp_path)
    (tmp_path / "train.json").write_text(json.dumps([entry, dict(entry, file=files[1]), entry]))
    with pytest.raises(FCDBError, match=f"photo {files[0]} is annotated twice \\(entries 0 and 2 of split 'train'\\)"):
        read_fcdb(tmp_path)
    assert not is_fcdb(tmp_path / "images")


def test_the_packaged_validation_list():
    names = validation_files()
    assert len(names) == 200 == len(set(names)) and names == sorted(names)
    assert all(name.endswith((".jpg", ".png")) and "/" not in name for name in names)


@pytest.mark.skipif(not FCDB_DIR.exists(), reason=f"{FCDB_DIR} (the team's FCDB copy; its photos are not ours "
                                                  "to copy into the repo) is not here")
def test_the_validation_list_is_the_documented_draw_of_the_team_copy():
    photos, report = read_fcdb(FCDB_DIR, "train")
    assert len(photos) == 1338 and report.clipped == 47 and report.dropped == 0
    files = sorted(p.file for p in photos)
    drawn = torch.randperm(1338, generator=torch.Generator().manual_seed(0))[:200].tolist()
    assert sorted(files[i] for i in drawn) == validation_files()
    assert {p.file for p in read_fcdb(FCDB_DIR, "val")[0]} == set(validation_files())
    assert len(read_fcdb(FCDB_DIR, "fit")[0]) == 1138


def test_eval_on_fcdb_reports_both_protocols_and_baselines(tmp_path, capsys):
    make_fcdb(tmp_path / "fcdb", 4)
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(tmp_path / "fcdb"), "--split", "train", "--model", "prior",
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| whole photo |" in printed and "| centred |" in printed
    result = json.loads(out.read_text())
    methods = result["metrics"]
    model = next(m for m in methods if m.startswith("geometry prior"))
    assert set(methods[model]) == {"ratio", "free"} and set(methods["whole photo"]) == {"free"}
    assert methods["centred"]["ratio"]["photos"] == 4
    photos, _ = read_fcdb(tmp_path / "fcdb")
    for p in photos:
        entry = result["photos"][p.file]
        h, w = p.size
        whole = entry["whole photo"]["free"]
        area = float((p.crop[2] - p.crop[0]) * (p.crop[3] - p.crop[1]))
        assert whole["box"] == [0, 0, w, h] and whole["iou"] == pytest.approx(area / (w * h))
        x1, y1, x2, y2 = p.crop.tolist()
        assert whole["bde"] == pytest.approx((x1 / w + (w - x2) / w + y1 / h + (h - y2) / h) / 4)
        chosen = torch.tensor(entry[model]["ratio"]["box"])
        ratio = (x2 - x1) / (y2 - y1)
        assert float((chosen[2] - chosen[0]) / (chosen[3] - chosen[1])) == pytest.approx(ratio, rel=2e-3)
        assert 0 <= entry[model]["free"]["iou"] <= 1


def test_eval_measures_panoramas_in_the_protocol_they_have(tmp_path, capsys):
    """The official grid has no crop of a photo past about 4:1: such photos count in ratio given, not in free
    form (before, the whole evaluation stopped at the first one)."""
    make_fcdb(tmp_path / "fcdb", 3, size=(1300, 300))
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(tmp_path / "fcdb"), "--split", "train", "--model", "prior",
                     "--json", str(out)]) == 0
    capsys.readouterr()
    methods = json.loads(out.read_text())["metrics"]
    model = next(m for m in methods if m.startswith("geometry prior"))
    assert set(methods[model]) == {"ratio"} and methods[model]["ratio"]["photos"] == 3
    assert "whole photo" not in methods and methods["centred"]["ratio"]["photos"] == 3


def test_eval_on_fcdb_gives_the_cropper_s_crops(tmp_path, capsys):
    """s2c eval resizes the photos as the Cropper does for its model (the prior, like the default model,
    reads antialiased images), so its crops are the Cropper's; evaluate_fcdb refuses a dataset that resizes
    otherwise."""
    from PIL import Image

    from s2c_ops import Cropper
    from s2c_ops.evaluation import evaluate_fcdb
    from s2c_ops.models import create_model

    make_fcdb(tmp_path / "fcdb", 3)
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(tmp_path / "fcdb"), "--split", "train", "--model", "prior",
                     "--json", str(out)]) == 0
    capsys.readouterr()
    result = json.loads(out.read_text())
    cropper = Cropper(create_model("prior"))
    assert cropper.preprocess.antialias
    for p in read_fcdb(tmp_path / "fcdb")[0]:
        x1, y1, x2, y2 = p.crop.tolist()
        entry = next(v for k, v in result["photos"][p.file].items() if k.startswith("geometry prior"))
        (crop,) = cropper.crop(Image.open(p.path), (x2 - x1) / (y2 - y1))
        assert entry["ratio"]["box"] == pytest.approx(crop.boxes[0].tolist(), abs=0.01)
    with pytest.raises(ValueError, match="resizes photos unlike the Cropper"):
        evaluate_fcdb(cropper, FCDB(tmp_path / "fcdb", "train"))


def test_eval_default_split_is_one_the_folder_has(tmp_path, capsys, monkeypatch):
    """This project's layout has no test split: s2c eval defaults to val there; a split the folder lacks is a
    usage error naming those it has."""
    files = make_fcdb(tmp_path / "fcdb", 4)
    monkeypatch.setattr(fcdb, "validation_files", lambda: files[:2])
    assert cli.main(["eval", "--data", str(tmp_path / "fcdb"), "--model", "prior"]) == 0
    assert "FCDB val: 2 photos" in capsys.readouterr().err
    assert cli.main(["eval", "--data", str(tmp_path / "fcdb"), "--split", "test", "--model", "prior"]) == 2
    assert f"--split test: {tmp_path / 'fcdb'} holds the FCDB splits train, val, fit" in capsys.readouterr().err


def test_eval_never_writes_over_a_file_it_did_not_write_and_refuses_an_empty_split(tmp_path, capsys, monkeypatch):
    """--json naming the annotations or a photo replaced them (exit 0); a split without photos gave an
    empty table and exit 0."""
    files = make_fcdb(tmp_path / "fcdb", 4)
    data = tmp_path / "fcdb"
    base = ["eval", "--data", str(data), "--split", "train", "--model", "prior"]
    for given in (data / "train.json", data / "images" / files[0]):
        before = given.read_bytes()
        assert cli.main([*base, "--json", str(given)]) == 2
        assert "exists and is not a result of s2c eval" in capsys.readouterr().err
        assert given.read_bytes() == before
    assert cli.main([*base, "--json", str(data)]) == 2 and "is a folder" in capsys.readouterr().err
    assert cli.main([*base, "--json", str(data / "train.json" / "x.json")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    out = tmp_path / "eval.json"
    assert cli.main([*base, "--json", str(out)]) == 0 and cli.main([*base, "--json", str(out)]) == 0  # its own
    capsys.readouterr()
    monkeypatch.setattr(fcdb, "validation_files", lambda: ["none of them.jpg"])
    assert cli.main(["eval", "--data", str(data), "--split", "val", "--model", "prior"]) == 1
    assert "the val split of" in capsys.readouterr().err


def _annotated(root, entries, photos=("a.jpg",)):
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in photos:
        Image.new("RGB", (320, 240), (120, 90, 60)).save(root / "images" / name)
    (root / "train.json").write_bytes(entries if isinstance(entries, bytes) else json.dumps(entries).encode())
    return root


ENTRY = {"file": "a.jpg", "width": 320, "height": 240, "crop": [40, 30, 160, 120]}


@pytest.mark.parametrize("entries, message", [
    (b'[{"file": "\xe9.jpg"}]', "train.json: not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "train.json: nested deeper than the JSON reader goes"),
    (b'[{"file": "a.jpg", "width": 320, "height": 240, "crop": [1' + b"0" * 400 + b', 0, 10, 10]}]',
     r"entry 0: expected \[x, y, w, h\] finite numbers, got \[1000"),
    (b'[{"file": "a.jpg", "width": 320, "height": 240, "crop": [Infinity, 0, 10, 10]}]', "finite numbers"),
    (b'[{"file": "a.jpg", "width": 1e400, "height": 240, "crop": [0, 0, 10, 10]}]', "width must be a whole number"),
    ([dict(ENTRY, file="/etc/passwd")], "file must name a photo in the folder's images/, got '/etc/passwd'"),
    ([dict(ENTRY, file="../a.jpg")], "file must name a photo"),
    ([dict(ENTRY, file=["a.jpg"])], "file must name a photo"),
])
def test_annotations_that_are_not_fcdb_s_are_named(tmp_path, entries, message):
    """Each is one FCDBError naming the file (and the entry): before, raw tracebacks (OverflowError, a
    RecursionError), a line naming no file, or a photo outside the folder read."""
    root = _annotated(tmp_path / "fcdb", entries)
    with pytest.raises(FCDBError, match=message):
        read_fcdb(root)


def test_a_human_crop_no_candidate_of_its_ratio_matches_is_dropped_and_counted(tmp_path):
    root = _annotated(tmp_path / "fcdb", [ENTRY, dict(ENTRY, file="b.jpg", crop=[10, 0, 1, 240])],
                      photos=("a.jpg", "b.jpg"))
    photos, report = read_fcdb(root)
    assert photos[0].crop is not None and photos[1].crop is None
    assert report.dropped == 1 and report.photos == {"b.jpg": ["crop (no candidate of its ratio) dropped"]}


def test_eval_names_an_unreadable_photo_refuses_a_split_without_crops_and_keeps_a_link(tmp_path, capsys):
    from synthetic import png_bomb

    root = _annotated(tmp_path / "fcdb", [ENTRY, dict(ENTRY, file="bomb.png", width=100_000, height=100_000)])
    png_bomb(root / "images" / "bomb.png")
    base = ["eval", "--data", str(root), "--split", "train", "--model", "prior", "--proposer", "saliency"]
    assert cli.main(base) == 1
    err = capsys.readouterr().err
    assert f"{root / 'images' / 'bomb.png'}: cannot decode the photo" in err and "Traceback" not in err
    _annotated(root, [dict(ENTRY, crop=[400, 300, 10, 10])])  # its one crop outside the photo: dropped
    assert cli.main(base) == 1
    assert "has no photo with a human crop to evaluate" in capsys.readouterr().err
    _annotated(root, [ENTRY])
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"metrics": {}}')
    (tmp_path / "link.json").symlink_to(earlier)
    assert cli.main(base + ["--json", str(tmp_path / "link.json")]) == 0
    capsys.readouterr()
    assert (tmp_path / "link.json").is_symlink() and "a.jpg" in json.loads(earlier.read_text())["photos"]
