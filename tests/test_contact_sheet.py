"""The contact sheet that `make demo` draws from `s2c crop --json` records."""
import json

import pytest
from PIL import Image

from conftest import REPO
from s2c_ops import cli
from s2c_ops.cli.contact_sheet import THUMB_HEIGHT, contact_sheet, main


def test_contact_sheet_from_crop_records(tmp_path):
    photos = [REPO / "s2c_ops" / "demo_photos" / name for name in ("chelsea.png", "coffee.png", "rocket.jpg")]
    records = tmp_path / "crops.jsonl"
    assert cli.main(["crop", *map(str, photos), "--ratio", "16:9", "--ratio", "1:1", "--json", str(records)]) == 0
    sheet = Image.open(contact_sheet(str(records), str(tmp_path / "sheet.png"), columns=2))
    assert sheet.height == 2 * (THUMB_HEIGHT + 8) + 8  # 3 photos in 2 columns
    # The best 16:9 box of the first photo is drawn in red at its thumbnail scale.
    first = json.loads(records.read_text().splitlines()[0])
    scale = THUMB_HEIGHT / first["height"]
    x1, y1 = (round(v * scale) for v in first["boxes"][0][:2])
    assert sheet.getpixel((8 + x1 + 1, 8 + y1 + 1)) == (230, 40, 40)


def test_contact_sheet_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"file": "x.png", "status": "error", "ratio": 1.0, "ratio_text": "1:1",
                                 "error": "corrupt"}) + "\n")
    with pytest.raises(ValueError, match="no successful crop records"):
        contact_sheet(str(empty), str(tmp_path / "sheet.png"))
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"file": "x.png", "status": "error"}) + "\n")  # no ratio: not s2c crop's
    with pytest.raises(ValueError, match="line 1 is not a record of s2c crop"):
        contact_sheet(str(other), str(tmp_path / "sheet.png"))
    assert main(["only-one-argument"]) == 2
