"""``s2c crop``: inputs, bad files, outputs (names, formats, metadata, atomic writes), records,
exit status, the stdout contract, and torchrun sharding (2 CPU ranks)."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from s2c_ops import Cropper, cli
from s2c_ops.cli.crop import decode as crop_decode
from s2c_ops.cropping.candidates import parse_ratio, pixel_crops, ratio_anchors
from s2c_ops.cropping.images import to_rgb
from s2c_ops.cropping.transforms import OfficialPreprocess
from s2c_ops.files import temporary_tag
from s2c_ops.models.registry import model_description
from synthetic import png_bomb

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "s2c_ops" / "demo_photos"
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")

DEFAULT_DESCRIPTION = model_description("default")


# ---------------------------------------------------------------------------------------------------
# Test images, made in tmp_path
# ---------------------------------------------------------------------------------------------------
def photo(width=240, height=160, seed=0) -> Image.Image:
    """A small RGB picture with some structure (a bright blob on a gradient), so saliency finds something."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    blob = np.exp(-(((x - cx) / (0.12 * width)) ** 2 + ((y - cy) / (0.12 * height)) ** 2))
    r = 60 + 150 * blob + 30 * x / width
    g = 80 + 40 * y / height + 20 * blob
    b = 120 - 60 * blob + rng.normal(0, 4, (height, width))
    return Image.fromarray(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8), "RGB")


_SRGB_ICC = []


def srgb_icc() -> bytes:
    """One sRGB profile for the whole run (a new one carries a new creation time in its header)."""
    if not _SRGB_ICC:
        _SRGB_ICC.append(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    return _SRGB_ICC[0]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One file of each kind the command must handle, and what each should give."""
    d = tmp_path_factory.mktemp("zoo")
    icc = srgb_icc()
    base = photo(240, 160)
    base.save(d / "rgb.jpg", quality=75, icc_profile=icc, comment=b"hello")
    base.convert("CMYK").save(d / "cmyk.jpg", quality=90, icc_profile=icc)
    base.convert("L").save(d / "gray.png")
    rgba = base.convert("RGBA")
    alpha = np.zeros((160, 240), np.uint8)
    alpha[20:140, 30:210] = 255
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(d / "rgba.png")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal.info["transparency"] = 0
    pal.save(d / "palette.png", transparency=0)
    y, x = np.mgrid[0:160, 0:240]
    Image.fromarray((x * 65535 // 239).astype(np.uint16)).save(d / "sixteen.png")  # opens as I;16
    # stored 240 wide x 160 high, EXIF orientation 6: upright it is 160 wide x 240 high
    exif = Image.Exif()
    exif[0x0112] = 6
    base.save(d / "rotated.jpg", exif=exif.tobytes(), quality=90)
    photo(20, 20).save(d / "tiny.png")
    full = io.BytesIO()
    base.save(full, "JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (d / "text.jpg").write_text("this is not a JPEG\n")
    png_bomb(d / "bomb.png")
    return d


def run_cli(args, capsys=None):
    """Runs ``s2c`` in this process: (exit status, stdout, stderr)."""
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr() if capsys else ("", "")
    return rc, out, err


def written_box(record, k=0):
    """The Pillow box of a record's k-th crop: the whole-pixel crop that keeps the ratio (as AestheticCrop cuts)."""
    x0, y0, w, h = pixel_crops(torch.tensor([record["boxes"][k]]), record["ratio"], record["height"],
                               record["width"])[0].tolist()
    return x0, y0, x0 + w, y0 + h


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def by_file(records):
    return {Path(r["file"]).name: r for r in records}


# ---------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["0:1", "abc", "-1.5", "1:0", "inf", "16:-9", ""])
def test_invalid_ratio_is_a_usage_error(bad, capsys, tmp_path):
    rc, _, err = run_cli(["crop", DEMO / "chelsea.png", "--ratio", bad, "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 2
    assert "invalid aspect ratio" in err and "--ratio" in err
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["--size", "12x"], "invalid size"),
    (["--size", "0x10"], "invalid size"),
    (["--top-k", "0"], "at least 1"),
    (["--official", "x.pth"], "--official needs --config"),
    (["--config", "GAICv1"], "--config goes with --official"),
    (["--show"], "--show needs --out"),
    (["--proposer", "nope"], "invalid choice"),
    (["--official", "x.pth", "--config", "GAICv1", "--weights", "w"], "not allowed with"),
])
def test_usage_errors(args, message, capsys):
    rc, _, err = run_cli(["crop", DEMO / "chelsea.png", "--ratio", "1:1", *args], capsys)
    assert rc == 2 and message in err


def test_ratio_forms_and_names(tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, _ = run_cli(["crop", DEMO / "chelsea.png", "--ratio", "16:9", "--ratio", "4/3", "--ratio", "1.5",
                        "--ratio", "32:18", "--out", out, "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["chelsea_1.5.png", "chelsea_16x9.png", "chelsea_4x3.png"]
    records = read_jsonl(tmp_path / "r.jsonl")
    assert [r["ratio_text"] for r in records] == ["16:9", "4/3", "1.5"]  # 32:18 is 16:9 again
    for r in records:
        (x1, y1, x2, y2), = r["boxes"]
        assert (x2 - x1) / (y2 - y1) == pytest.approx(parse_ratio(r["ratio_text"]), rel=1e-4)
        crop = Image.open(r["outputs"][0])
        x0, y0, x3, y3 = written_box(r)
        assert crop.size == (x3 - x0, y3 - y0)


# ---------------------------------------------------------------------------------------------------
# The zoo: every kind of bad and odd input, in one run
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zoo_run(zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo_out")
    extra = zoo.parent / (zoo.name + "_notes.txt")
    extra.write_text("not an image at all")
    args = ["crop", zoo, extra, zoo / "missing.jpg", "--ratio", "16:9", "--ratio", "1:1", "--top-k", "2",
            "--out", out / "crops", "--json", out / "records.jsonl", "--show", "--workers", "2", "--batch-size", "3"]
    rc = cli.main([str(a) for a in args])
    return rc, read_jsonl(out / "records.jsonl"), out / "crops"


def test_zoo_exit_status_and_one_record_per_input_and_ratio(zoo_run, zoo):
    rc, records, _ = zoo_run
    assert rc == 1
    files = [r["file"] for r in records]
    names = sorted({Path(f).name for f in files})
    expected = sorted(p.name for p in zoo.iterdir()) + ["missing.jpg", zoo.name + "_notes.txt"]
    assert names == sorted(expected)
    assert len(records) == 2 * len(names)
    assert len({(r["file"], r["ratio_text"]) for r in records}) == len(records)
    # input order: the folder's files (sorted), then the explicit file, then the missing one
    order = list(dict.fromkeys(Path(f).name for f in files))
    assert order[-2:] == [zoo.name + "_notes.txt", "missing.jpg"]
    assert order[:-2] == sorted(order[:-2])


@pytest.mark.parametrize("name, message", [
    ("tiny.png", "20x20 px; both sides must be at least 32 px"),
    ("truncated.jpg", "corrupt or truncated image"),
    ("text.jpg", "not an image Pillow can read"),
    ("bomb.png", "decompression-bomb limit"),
    ("missing.jpg", "no such file or folder"),
])
def test_zoo_failures_have_clear_messages(zoo_run, zoo, name, message):
    _, records, crops = zoo_run
    mine = [r for r in records if Path(r["file"]).name == name]
    assert len(mine) == 2 and all(r["status"] == "error" for r in mine)
    assert all(message in r["error"] and "\n" not in r["error"] for r in mine), mine[0]["error"]
    stem = Path(name).stem
    assert not list(crops.glob(f"{stem}_*"))


def test_non_image_file(zoo_run, zoo):
    _, records, _ = zoo_run
    mine = [r for r in records if r["file"].endswith("_notes.txt")]
    assert [r["status"] for r in mine] == ["error", "error"]
    assert "not an image" in mine[0]["error"]


@pytest.mark.parametrize("name, mode, fmt", [
    ("rgb.jpg", "RGB", "JPEG"), ("cmyk.jpg", "CMYK", "JPEG"), ("gray.png", "L", "PNG"), ("rgba.png", "RGBA", "PNG"),
    ("palette.png", "P", "PNG"), ("sixteen.png", "I;16", "PNG"), ("rotated.jpg", "RGB", "JPEG"),
])
def test_zoo_crops_keep_format_and_mode(zoo_run, zoo, name, mode, fmt):
    _, records, crops = zoo_run
    mine = [r for r in records if Path(r["file"]).name == name]
    assert [r["status"] for r in mine] == ["ok", "ok"], mine
    source = ImageOps.exif_transpose(Image.open(zoo / name))
    for r in mine:
        assert (r["width"], r["height"]) == source.size
        assert r["model"] == DEFAULT_DESCRIPTION and r["proposer"] == "default"
        assert len(r["boxes"]) == len(r["scores"]) == len(r["outputs"]) == 2
        assert r["scores"][0] >= r["scores"][1]
        stem, ext = os.path.splitext(name)
        assert [Path(p).name for p in r["outputs"]] == [f"{stem}_{r['ratio_text'].replace(':', 'x')}_{k}{ext}" for k in (1, 2)]
        for k, (box, path) in enumerate(zip(r["boxes"], r["outputs"])):
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= r["width"] and 0 <= y1 < y2 <= r["height"]
            assert (x2 - x1) / (y2 - y1) == pytest.approx(r["ratio"], rel=1e-4)
            crop = Image.open(path)
            assert crop.format == fmt and crop.mode == mode
            pixel_box = written_box(r, k)
            w, h = pixel_box[2] - pixel_box[0], pixel_box[3] - pixel_box[1]
            assert crop.size == (w, h) and abs(w / h - r["ratio"]) <= 0.5 / min(w, h)
            expected = source.crop(pixel_box)
            if fmt == "PNG":  # lossless: the very pixels (alpha, palette indices, 16-bit values), of a box within a
                # pixel of the one the record's rounded box gives
                assert any(np.array_equal(np.asarray(crop), np.asarray(source.crop(
                    (pixel_box[0] + dx, pixel_box[1] + dy, pixel_box[2] + dx, pixel_box[3] + dy))))
                    for dx in (0, -1, 1) for dy in (0, -1, 1))
                if mode == "P":
                    assert crop.info.get("transparency") == 0 and crop.getpalette() == expected.getpalette()
            else:
                diff = np.abs(np.asarray(crop, dtype=np.int16) - np.asarray(expected, dtype=np.int16)).mean()
                assert diff < 4
        assert Path(r["show"]).name == f"{stem}_{r['ratio_text'].replace(':', 'x')}_show.png"
        show = Image.open(r["show"])
        assert show.format == "PNG" and show.size == source.size


def test_jpeg_quality_icc_and_exif_kept(zoo_run, zoo):
    _, records, _ = zoo_run
    source = Image.open(zoo / "rgb.jpg")
    rec = next(r for r in records if r["file"].endswith("rgb.jpg"))
    crop = Image.open(rec["outputs"][0])
    assert crop.quantization == source.quantization  # the source's quality
    assert crop.info["icc_profile"] == source.info["icc_profile"]
    assert crop.info.get("comment") == b"hello"
    from PIL import JpegImagePlugin

    assert JpegImagePlugin.get_sampling(crop) == JpegImagePlugin.get_sampling(source)
    cmyk = Image.open(next(r for r in records if r["file"].endswith("cmyk.jpg"))["outputs"][0])
    assert cmyk.info["icc_profile"] == srgb_icc() and cmyk.quantization == Image.open(zoo / "cmyk.jpg").quantization
    rotated = Image.open(next(r for r in records if r["file"].endswith("rotated.jpg"))["outputs"][0])
    assert rotated.getexif().get(0x0112, 1) == 1  # upright pixels, no orientation left


def test_an_orientation_out_of_range_is_not_written(tmp_path, capsys):
    """EXIF orientation 99 turns nothing (the photo is taken as upright) and is left out of the crop, whose
    other EXIF tags are kept; before, it was copied, though the crop is said to carry no orientation."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 99, "s2c test camera"
    photo(120, 90).save(tmp_path / "odd.jpg", exif=exif.tobytes(), quality=90)
    rc, _, _ = run_cli(["crop", tmp_path / "odd.jpg", "--ratio", "1:1", "--out", tmp_path / "out"], capsys)
    assert rc == 0
    crop = Image.open(tmp_path / "out" / "odd_1x1.jpg")
    assert crop.width == crop.height and 0x0112 not in crop.getexif() and crop.getexif()[0x010F] == "s2c test camera"


def test_exif_rotation_applied_first(zoo_run):
    _, records, _ = zoo_run
    rec = next(r for r in records if r["file"].endswith("rotated.jpg") and r["ratio_text"] == "16:9")
    assert (rec["width"], rec["height"]) == (160, 240)  # stored 240x160, orientation 6


def test_no_temporary_files_left(zoo_run):
    _, _, crops = zoo_run
    assert not [p for p in crops.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------------
# Decoding details
# ---------------------------------------------------------------------------------------------------
def test_sixteen_bit_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    rgb = np.asarray(to_rgb(Image.fromarray(ramp)))
    assert rgb.shape == (8, 256, 3)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and 120 <= rgb[0, 128, 0] <= 135
    assert np.all(np.diff(rgb[0, :, 0].astype(int)) >= 0)


def test_alpha_over_white_and_cmyk_to_rgb():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # red
    assert tuple(np.asarray(to_rgb(cmyk))[0, 0]) == (255, 0, 0)


def test_decompression_bomb_warning_level_fails_too(tmp_path, monkeypatch, capsys):
    """Past MAX_IMAGE_PIXELS (where Pillow only warns) and past twice it (where Pillow raises)."""
    photo(120, 100).save(tmp_path / "a_warn.png")  # 12,000 px
    photo(200, 150).save(tmp_path / "b_error.png")  # 30,000 px
    photo(90, 90).save(tmp_path / "c_ok.png")  # 8,100 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    rc, _, _ = run_cli(["crop", tmp_path, "--ratio", "1:1", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 1
    recs = by_file(read_jsonl(tmp_path / "r.jsonl"))
    assert recs["c_ok.png"]["status"] == "ok"
    for name in ("a_warn.png", "b_error.png"):
        assert recs[name]["status"] == "error" and "decompression-bomb limit" in recs[name]["error"]


def test_ratio_the_image_cannot_hold_fails_alone(tmp_path, capsys):
    photo(100, 100).save(tmp_path / "square.png")
    out = tmp_path / "out"
    rc, _, err = run_cli(["crop", tmp_path / "square.png", "--ratio", "16:9", "--ratio", "10:1", "--out", out,
                          "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 1
    ok, bad = read_jsonl(tmp_path / "r.jsonl")
    assert ok["status"] == "ok" and Path(ok["outputs"][0]).exists()
    assert bad["status"] == "error" and bad["ratio_text"] == "10:1" and "cannot hold a crop of ratio 10" in bad["error"]
    assert (bad["width"], bad["height"]) == (100, 100)
    lines = [line for line in err.splitlines() if line.startswith("error ")]
    assert len(lines) == 1 and "square.png" in lines[0] and "10:1" in lines[0]


def test_draft_decode_boxes_in_full_resolution(tmp_path, capsys, monkeypatch):
    """A large JPEG (with EXIF rotation) is decoded at a reduced size for the model; boxes and crops
    are still in full-resolution upright pixels."""
    big = photo(3200, 2400, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6
    big.save(tmp_path / "big.jpg", quality=90, exif=exif.tobytes())
    preprocess = OfficialPreprocess()
    drafted = crop_decode.decode(str(tmp_path / "big.jpg"), preprocess, keep_full=True, use_draft=True)
    full = crop_decode.decode(str(tmp_path / "big.jpg"), preprocess, keep_full=True, use_draft=False)
    assert (drafted.width, drafted.height) == (full.width, full.height) == (2400, 3200)
    assert drafted.image is None and full.image is not None  # the draft is not the full image
    assert drafted.pixels.shape == full.pixels.shape == (3, 352, 256)
    assert (drafted.pixels.float() - full.pixels.float()).abs().mean() < 3
    assert drafted.detail is None and full.detail is None  # no second look asked for: no detail made
    # A draft keeps at least twice the pixels of the resize that follows it; a proposer's second look at 1.5x:
    # at least twice 1.5x the model's pixels (the detail is as sharp as one made from the full photo), and the
    # photo at 1.5x is kept for it.
    looked = crop_decode.decode(str(tmp_path / "big.jpg"), preprocess, keep_full=True, use_draft=True, detail=1.5)
    sharp = crop_decode.decode(str(tmp_path / "big.jpg"), preprocess, keep_full=True, use_draft=False, detail=1.5)
    assert looked.image is None and looked.detail.shape == sharp.detail.shape == (1, 3, 528, 384)
    assert looked.detail.dtype == torch.uint8
    assert (looked.detail.float() - sharp.detail.float()).abs().mean() < 3
    assert (looked.pixels.float() - full.pixels.float()).abs().mean() < 3

    out = tmp_path / "out"
    rc, _, _ = run_cli(["crop", tmp_path / "big.jpg", "--ratio", "4:5", "--out", out, "--json", tmp_path / "r.jsonl"],
                       capsys)
    assert rc == 0
    rec, = read_jsonl(tmp_path / "r.jsonl")
    (x1, y1, x2, y2), = rec["boxes"]
    assert (rec["width"], rec["height"]) == (2400, 3200)
    assert x2 <= 2400 and y2 <= 3200 and (x2 - x1) / (y2 - y1) == pytest.approx(0.8, rel=1e-4)
    crop = Image.open(rec["outputs"][0])
    box = written_box(rec)
    assert crop.size == (box[2] - box[0], box[3] - box[1])
    upright = ImageOps.exif_transpose(Image.open(tmp_path / "big.jpg"))
    expected = np.asarray(upright.crop(box), dtype=np.int16)
    assert np.abs(np.asarray(crop, dtype=np.int16) - expected).mean() < 4


def test_same_boxes_as_cropper_for_png(tmp_path, capsys):
    rc, _, _ = run_cli(["crop", DEMO / "chelsea.png", DEMO / "coffee.png", "--ratio", "16:9", "--ratio", "3:4",
                        "--top-k", "3", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    records = read_jsonl(tmp_path / "r.jsonl")
    images = [Image.open(DEMO / n) for n in ("chelsea.png", "coffee.png")]
    expected = Cropper().crop_ratios(images, ["16:9", "3:4"], top_k=3)
    for rec in records:
        i = 0 if rec["file"].endswith("chelsea.png") else 1
        result = expected[i][["16:9", "3:4"].index(rec["ratio_text"])]
        assert np.allclose(rec["boxes"], result.boxes.numpy(), atol=1e-3)
        assert np.allclose(rec["scores"], result.scores.numpy(), atol=1e-5)


def test_a_ratio_s_crop_does_not_depend_on_the_others(tmp_path, capsys):
    """Each ratio's crops, asked for together (command line, crop_ratios), are those it gets alone; scored as
    one candidate set (the default model's expected-IoU step mixing the ratios) they would not be."""
    ratios = ["16:9", "1:1", "4:5"]
    names = ("coffee.png", "chelsea.png", "astronaut.png")
    rc, _, _ = run_cli(["crop", *(DEMO / n for n in names), *(a for r in ratios for a in ("--ratio", r)),
                        "--top-k", "2", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    records = by_file_and_ratio(read_jsonl(tmp_path / "r.jsonl"))
    cropper = Cropper()
    together = cropper.crop_ratios([Image.open(DEMO / n) for n in names], ratios, top_k=2)
    mixed = 0
    for name, both in zip(names, together):
        image = Image.open(DEMO / name)
        for text in ratios:
            alone = cropper.crop(image, text, top_k=2)[0]
            for result in (both[ratios.index(text)], records[name, text]):
                boxes, scores = (result.boxes, result.scores) if hasattr(result, "boxes") else (
                    torch.tensor(result["boxes"]), torch.tensor(result["scores"]))
                assert torch.allclose(boxes, alone.boxes, atol=1e-3), (name, text)
                assert torch.allclose(scores.float(), alone.scores, atol=1e-5), (name, text)
        resized, geometry, _ = cropper._prepare(image)
        groups = cropper._candidates(geometry, [parse_ratio(r) for r in ratios])
        one_set = cropper._score_images([resized], [geometry], [torch.cat(groups)])[0]
        grouped = cropper._score_images([resized], [geometry], [groups])[0]
        mixed += not torch.allclose(one_set, grouped)
    assert mixed == len(names)  # the groups matter: the test would catch scoring them as one set


KINDS = ["rgb.jpg", "cmyk.jpg", "gray.png", "rgba.png", "palette.png", "sixteen.png", "rotated.jpg"]


def test_same_boxes_as_cropper_for_every_file_kind(zoo, tmp_path, capsys):
    """The library (a PIL image as Image.open gives it) and the command line see the same pixels: EXIF
    orientation, alpha over white, 16-bit scaled, CMYK through its profile, palette, grayscale."""
    rc, _, _ = run_cli(["crop", *(zoo / k for k in KINDS), "--ratio", "16:9", "--ratio", "4:5", "--top-k", "2",
                        "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    records = by_file_and_ratio(read_jsonl(tmp_path / "r.jsonl"))
    expected = Cropper().crop_ratios([Image.open(zoo / k) for k in KINDS], ["16:9", "4:5"], top_k=2)
    for kind, results in zip(KINDS, expected):
        for text, result in zip(("16:9", "4:5"), results):
            rec = records[kind, text]
            assert np.allclose(rec["boxes"], result.boxes.numpy(), atol=1e-3), kind
            assert np.allclose(rec["scores"], result.scores.numpy(), atol=1e-5), kind
    assert (records["rotated.jpg", "16:9"]["width"], records["rotated.jpg", "16:9"]["height"]) == (160, 240)


def by_file_and_ratio(records):
    return {(Path(r["file"]).name, r["ratio_text"]): r for r in records}


# ---------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------
def test_size_resizes_exactly(zoo, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = run_cli(["crop", zoo / "rgb.jpg", zoo / "palette.png", zoo / "sixteen.png", "--ratio", "16:9",
                          "--size", "64x36", "--out", out], capsys)
    assert rc == 0 and "stretched" not in err
    for name in ("rgb_16x9.jpg", "palette_16x9.png", "sixteen_16x9.png"):
        assert Image.open(out / name).size == (64, 36)
    assert Image.open(out / "palette_16x9.png").mode == "RGBA"  # resampled palette keeps its transparency
    rc, _, err = run_cli(["crop", zoo / "rgb.jpg", "--ratio", "1:1", "--size", "64x36", "--out", tmp_path / "o2"],
                         capsys)
    assert rc == 0 and "stretched" in err and Image.open(tmp_path / "o2" / "rgb_1x1.jpg").size == (64, 36)


def test_existing_outputs_need_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["crop", DEMO / "chelsea.png", "--ratio", "16:9", "--out", out]
    assert run_cli(args, capsys)[0] == 0
    target = out / "chelsea_16x9.png"
    target.write_bytes(b"mine")
    rc, _, err = run_cli(args, capsys)
    assert rc == 1 and "exists (pass --overwrite" in err and target.read_bytes() == b"mine"
    rc, _, _ = run_cli(args + ["--overwrite"], capsys)
    assert rc == 0 and Image.open(target).format == "PNG"
    (tmp_path / "r.jsonl").write_text("old\n")
    rc, _, err = run_cli(args + ["--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 2 and "exists" in err and (tmp_path / "r.jsonl").read_text() == "old\n"


def test_failed_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    from s2c_ops.cli.crop import write

    original = write.image_writer

    def failing_writer(image, **options):
        def writer(tmp):
            if temporary_tag("coffee_16x9_2.png") in tmp:  # the second crop of coffee.png
                Path(tmp).write_bytes(b"partial")
                raise OSError("disk full")
            original(image, **options)(tmp)

        return writer

    monkeypatch.setattr(write, "image_writer", failing_writer)
    out = tmp_path / "out"
    rc, _, err = run_cli(["crop", DEMO / "coffee.png", DEMO / "chelsea.png", "--ratio", "16:9", "--top-k", "2",
                          "--out", out], capsys)
    assert rc == 1 and "disk full" in err
    # no partial or temporary file, and not the first crop of the failed ratio either
    assert sorted(p.name for p in out.iterdir()) == ["chelsea_16x9_1.png", "chelsea_16x9_2.png"]


def test_inputs_folders_globs_duplicates_and_clashes(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / ".hidden").mkdir()
    photo(80, 60).save(src / "a.png")
    photo(80, 60, seed=1).save(src / "sub" / "b.jpg")
    photo(80, 60).save(src / ".hidden" / "c.png")
    photo(80, 60).save(src / ".d.png")
    (src / "notes.txt").write_text("skipped in folders")
    other = tmp_path / "other"
    other.mkdir()
    photo(80, 60, seed=2).save(other / "a.png")  # same name as src/a.png
    out = src / "out"  # inside an input folder: skipped when listing it
    rc, _, err = run_cli(["crop", src, str(src / "*.png"), src / "sub" / "b.jpg", other / "a.png",
                          str(tmp_path / "nothing*.png"), "--ratio", "1:1", "--out", out, "--json",
                          tmp_path / "r.jsonl"], capsys)
    assert rc == 1
    records = read_jsonl(tmp_path / "r.jsonl")
    files = [r["file"] for r in records]
    assert files == [str(src / "a.png"), str(src / "sub" / "b.jpg"), str(other / "a.png"), str(tmp_path / "nothing*.png")]
    assert [r["status"] for r in records] == ["ok", "ok", "error", "error"]
    assert "same names as those of" in records[2]["error"] and "no file matches" in records[3]["error"]
    assert (out / "a_1x1.png").exists() and (out / "sub" / "b_1x1.jpg").exists()
    # a second run over the folder does not pick up its own outputs
    rc, _, _ = run_cli(["crop", src, "--ratio", "1:1", "--out", out, "--json", tmp_path / "r2.jsonl", "--overwrite"],
                       capsys)
    assert rc == 0 and len(read_jsonl(tmp_path / "r2.jsonl")) == 2


def test_given_boxes(tmp_path, capsys, monkeypatch):
    from s2c_ops.cropping import cropper, proposals

    seen = []

    class Recording(proposals.GivenBoxes):
        def __init__(self, boxes):
            seen.append([b.clone() for b in boxes])
            super().__init__(boxes)

    monkeypatch.setattr(cropper, "GivenBoxes", Recording)  # what Cropper.score_resized builds from --boxes
    photo(400, 300).save(tmp_path / "p.png")
    photo(300, 400).save(tmp_path / "q.png")
    boxes = {"p.png": [[100, 75, 300, 225]], str(tmp_path / "q.png"): []}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    rc, _, _ = run_cli(["crop", tmp_path / "p.png", tmp_path / "q.png", "--ratio", "1:1", "--boxes",
                        tmp_path / "boxes.json", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    recs = by_file(read_jsonl(tmp_path / "r.jsonl"))
    assert recs["p.png"]["proposer"].startswith("boxes")
    given = {tuple(b.shape): b for batch in seen for b in batch}
    # p.png 400x300 -> model 352x256 (x 0.88, y 0.8533)
    assert torch.allclose(given[(1, 4)], torch.tensor([[88.0, 64.0, 264.0, 192.0]]), atol=1e-3)
    assert (0, 4) in given
    # an input without an entry fails; a malformed file is a usage error
    photo(80, 60).save(tmp_path / "r.png")
    rc, _, err = run_cli(["crop", tmp_path / "r.png", "--ratio", "1:1", "--boxes", tmp_path / "boxes.json"], capsys)
    assert rc == 1 and "no entry for this file in --boxes" in err
    # a box wholly outside the photo (other pixels, e.g. of a larger copy) fails that input, naming it
    (tmp_path / "far.json").write_text(json.dumps({"p.png": [[100, 75, 300, 225], [800, 600, 1200, 900]]}))
    rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--boxes", tmp_path / "far.json"], capsys)
    assert rc == 1 and "the box [800.0, 600.0, 1200.0, 900.0] lies outside the 400x300 photo" in err
    for bad in ('{"p.png": [[1, 2, 3]]}', '{"p.png": [[1%s, 0, 10, 10]]}' % ("0" * 400),  # past a float: a traceback
                '{"p.png": [[0, 0, Infinity, 10]]}'):
        (tmp_path / "bad.json").write_text(bad)
        rc, _, err = run_cli(["crop", tmp_path / "p.png", "--ratio", "1:1", "--boxes", tmp_path / "bad.json"], capsys)
        assert rc == 2 and "[x1, y1, x2, y2]" in err


def test_weights_and_proposer(tmp_path, capsys):
    from s2c_ops import S2CNet
    from s2c_ops.models.prior import GeometryPrior

    run = tmp_path / "run"
    run.mkdir()
    GeometryPrior.default().save(run / "model.safetensors")
    rc, out, _ = run_cli(["crop", DEMO / "coffee.png", "--ratio", "1:1", "--weights", run, "--proposer", "image"],
                         capsys)
    rec, = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and rec["model"] == f"geometry prior ({run / 'model.safetensors'})" and rec["proposer"] == "image"
    torch.manual_seed(0)
    S2CNet("GAICv2").save(tmp_path / "s2c.safetensors")
    rc, out, _ = run_cli(["crop", DEMO / "coffee.png", DEMO / "chelsea.png", "--ratio", "1:1", "--weights",
                          tmp_path / "s2c.safetensors", "--device", "cpu"], capsys)
    recs = [json.loads(line) for line in out.splitlines()]
    assert rc == 0
    assert [(Path(r["file"]).name, r["status"]) for r in recs] == [("coffee.png", "ok"), ("chelsea.png", "ok")]
    for r in recs:
        assert r["model"] == f"S2CNet ({tmp_path / 's2c.safetensors'})" and r["proposer"] == "default"
        assert (r["width"], r["height"]) == Image.open(r["file"]).size
        box, = r["boxes"]  # one square crop inside the image: one of the candidates the model scored
        x1, y1, x2, y2 = box
        assert 0 <= x1 < x2 <= r["width"] and 0 <= y1 < y2 <= r["height"]
        assert (x2 - x1) / (y2 - y1) == pytest.approx(1.0, rel=1e-4)
        candidates = ratio_anchors(r["height"], r["width"], 1.0)
        assert (candidates - torch.tensor(box)).abs().amax(1).min() < 1e-2
        score, = r["scores"]
        assert np.isfinite(score)
    rc, _, err = run_cli(["crop", DEMO / "coffee.png", "--ratio", "1:1", "--weights", tmp_path / "none"], capsys)
    assert rc == 2 and "no such weights file" in err


def test_workers_zero_gives_the_same_records(zoo, tmp_path, capsys):
    common = ["crop", zoo, "--ratio", "4:3", "--top-k", "2"]
    run_cli(common + ["--workers", "0", "--json", tmp_path / "a.jsonl"], capsys)
    run_cli(common + ["--workers", "3", "--batch-size", "2", "--json", tmp_path / "b.jsonl"], capsys)
    assert read_jsonl(tmp_path / "a.jsonl") == read_jsonl(tmp_path / "b.jsonl")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_device_missing(capsys):
    rc, _, err = run_cli(["crop", DEMO / "coffee.png", "--ratio", "1:1", "--device", "cuda"], capsys)
    assert rc == 2 and "CUDA is not available" in err


# ---------------------------------------------------------------------------------------------------
# As a program: python -m s2c_ops.cli, and torchrun
# ---------------------------------------------------------------------------------------------------
def test_module_entry_point_stdout_is_json_lines(zoo, tmp_path):
    """Not a terminal: records on stdout, one error line per failed input on stderr, nothing else."""
    proc = subprocess.run([sys.executable, "-m", "s2c_ops.cli", "crop", zoo / "rgb.jpg", zoo / "text.jpg",
                           zoo / "gray.png", "--ratio", "3:2"], capture_output=True, text=True, env=ENV,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(Path(r["file"]).name, r["status"]) for r in records] == [("rgb.jpg", "ok"), ("text.jpg", "error"),
                                                                      ("gray.png", "ok")]
    err = proc.stderr.splitlines()
    assert len(err) == 2 and err[0].startswith(f"error {zoo / 'text.jpg'}: not an image")
    assert "1 failed" in err[1]


def test_torchrun_two_cpu_ranks_merge(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        photo(160 + 16 * i, 120, seed=i).save(src / f"img{i}.png")
    (src / "img6.jpg").write_bytes(b"broken")
    out, records_path = tmp_path / "out", tmp_path / "records.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "s2c_ops.cli", "crop", src, "--ratio", "16:9", "--ratio", "1:1", "--out", out, "--json", records_path,
           "--workers", "1"]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=180)
    assert proc.returncode != 0  # img6.jpg failed, and every rank says so
    assert proc.stderr.count(f"error {src / 'img6.jpg'}: not an image") == 1, proc.stderr
    records = read_jsonl(records_path)
    keys = [(Path(r["file"]).name, r["ratio_text"]) for r in records]
    assert keys == [(f"img{i}.{'jpg' if i == 6 else 'png'}", r) for i in range(7) for r in ("16:9", "1:1")]
    assert [r["status"] for r in records] == ["ok"] * 12 + ["error"] * 2
    assert not list(tmp_path.glob("records.jsonl.rank*"))
    assert len(list(out.iterdir())) == 12
    single = tmp_path / "single.jsonl"
    assert cli.main(["crop", str(src), "--ratio", "16:9", "--ratio", "1:1", "--json", str(single)]) == 1
    strip = lambda rs: [{k: v for k, v in r.items() if k != "outputs"} for r in rs]  # noqa: E731
    assert strip(read_jsonl(single)) == strip(records)
