"""GAICD reading (s2c_ops.data): the real files (../shared/data/GAIC, or the repo's cut of it), the official pre-processing and
box snapping, augmentation (flip, jitter, reproducibility), collate, MOS -2 rows, and every kind of
malformed data raising GAICDError with the file and line."""
import json
import math
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from conftest import GAIC, GAIC_COUNTS
from s2c_ops.data import (
    GAICD,
    GAICDError,
    collate,
    denormalise_mos,
    flip_boxes,
    normalise_mos,
    read_annotations,
    read_image_sizes,
    read_object_boxes,
    read_split,
)
from s2c_ops.cropping.transforms import OfficialPreprocess

TRAIN_WITH_IMAGE = "211958"
TEST_WITH_IMAGE = "265813"


# ---------------------------------------------------------------------------------------------------
# A tiny dataset in the official layout
# ---------------------------------------------------------------------------------------------------
ANN_A = "10 20 50 80 3.5\n0 0 60 100 4.25\n5 10 55 90 1.0\n"  # y1 x1 y2 x2 MOS, image 100 x 60 (W x H)
BBOX_A = "10 20 30 40\n0 0 60 100\n5 5 6 7\n"
ANN_B = "0 0 64 48 2.0\n8 4 40 44 5.0\n"  # image 48 x 64 (portrait)
BBOX_B = "1 2 3 4\n10 10 20 20\n30 30 40 40\n"


def make_dataset(root: Path, images=None, annotations=None, bboxes=None, split=None, sizes=None, seed=0) -> Path:
    """Writes a GAICD-layout folder. ``images``: {id: (split, width, height) or None (no file)}."""
    images = {"a": ("train", 100, 60), "b": ("train", 48, 64)} if images is None else images
    annotations = {"a": ANN_A, "b": ANN_B} if annotations is None else annotations
    bboxes = {"a": BBOX_A, "b": BBOX_B} if bboxes is None else bboxes
    if split is None:
        split = {"train": [i for i, v in images.items() if v is None or v[0] == "train"],
                 "test": [i for i, v in images.items() if v is not None and v[0] == "test"]}
    if sizes is None:
        sizes = {i: [v[1], v[2]] for i, v in images.items() if v is not None}
    rng = np.random.default_rng(seed)
    for name in ("annotations", "bbox", "images/train", "images/test"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, text in annotations.items():
        (root / "annotations" / f"{i}.txt").write_text(text)
    for i, text in bboxes.items():
        (root / "bbox" / f"{i}.txt").write_text(text)
    for i, v in images.items():
        if v is None:
            continue
        s, w, h = v
        pixels = rng.integers(30, 225, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / s / f"{i}.png")
    (root / "split.json").write_text(json.dumps(split))
    (root / "image_sizes.json").write_text(json.dumps(sizes))
    return root


@pytest.fixture
def tiny(tmp_path):
    return make_dataset(tmp_path / "gaic")


def snapped(boxes_xyxy, original_hw, resized_hw):
    """The official box mapping written out in plain Python: floor x1, y1; ceil x2, y2."""
    sy, sx = resized_hw[0] / original_hw[0], resized_hw[1] / original_hw[1]
    return torch.tensor(
        [[math.floor(x1 * sx), math.floor(y1 * sy), math.ceil(x2 * sx), math.ceil(y2 * sy)] for x1, y1, x2, y2 in boxes_xyxy],
        dtype=torch.float32,
    )


def file_rows(path):
    return [[float(v) for v in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------
# The real data
# ---------------------------------------------------------------------------------------------------
def test_real_counts():
    n = GAIC_COUNTS
    split = read_split(GAIC / "split.json")
    assert len(split["train"]) == n["train"] and len(split["test"]) == n["test"]
    assert len(set(split["train"]) & set(split["test"])) == 0
    annotated = {p.stem for p in (GAIC / "annotations").glob("*.txt")}
    assert len(annotated) == n["annotated"] and {p.stem for p in (GAIC / "bbox").glob("*.txt")} == annotated
    assert set(split["train"]) <= annotated
    sizes = read_image_sizes(GAIC / "image_sizes.json")
    assert len(sizes) == n["sizes"] and sizes[TRAIN_WITH_IMAGE] == (683, 1024)  # (H, W); the file has [W, H]

    assert len(GAICD(GAIC, "train", pixels=False)) == n["train"]
    test = GAICD(GAIC, "test", pixels=False)
    assert sorted(test.ids) == ["265813", "297406", "302166", "309808"]
    assert GAICD.ids_with_images(GAIC, "train") == [TRAIN_WITH_IMAGE]
    assert sorted(GAICD.ids_with_images(GAIC, "test")) == n["test_with_images"]


def test_real_train_with_pixels_names_missing_image():
    with pytest.raises(GAICDError, match=r"images/train/\d+\.jpg: image missing .*with_images"):
        GAICD(GAIC, "train")


def _check_pixel_item(item, image_id, split):
    image = item["image"]
    assert image.dtype == torch.float32 and image.dim() == 3 and image.shape[0] == 3
    h, w = image.shape[-2:]
    with Image.open(GAIC / "images" / split / f"{image_id}.jpg") as im:
        W, H = im.size
    assert item["original_size"] == (H, W)
    assert (h, w) == OfficialPreprocess().output_size(H, W) and h % 32 == 0 and w % 32 == 0
    # the official pre-processing, reused
    with Image.open(GAIC / "images" / split / f"{image_id}.jpg") as im:
        expected, _ = OfficialPreprocess()(im)
    assert torch.equal(image, expected)

    rows = file_rows(GAIC / "annotations" / f"{image_id}.txt")
    valid = [r for r in rows if r[4] != -2]
    crops = item["crop_boxes"]
    assert crops.shape == (len(valid), 4) and item["mos"].shape == (len(valid),)
    original = [[r[1], r[0], r[3], r[2]] for r in valid]
    assert torch.equal(item["crop_boxes_original"], torch.tensor(original, dtype=torch.float32))
    assert torch.equal(crops, snapped(original, (H, W), (h, w)))
    assert torch.equal(crops, crops.round())  # whole model pixels
    assert torch.all(crops[:, :2] >= 0) and torch.all(crops[:, 2] <= w) and torch.all(crops[:, 3] <= h)
    assert torch.all(crops[:, 2] > crops[:, 0]) and torch.all(crops[:, 3] > crops[:, 1])
    assert torch.equal(item["mos"], torch.tensor([r[4] for r in valid], dtype=torch.float32))
    assert torch.all(item["mos"] >= 1) and torch.all(item["mos"] <= 5)

    objects = item["object_boxes"]
    assert objects.shape == (10, 4)
    assert torch.all(objects[:, :2] >= 0) and torch.all(objects[:, 2] <= w) and torch.all(objects[:, 3] <= h)
    assert torch.equal(objects, objects.round())
    assert item["flipped"] is False


def test_real_train_item_with_pixels():
    ds = GAICD.with_images(GAIC, "train")
    assert ds.ids == [TRAIN_WITH_IMAGE] and len(ds) == 1
    item = ds[0]
    assert item["id"] == TRAIN_WITH_IMAGE
    assert tuple(item["image"].shape) == (3, 256, 384)
    assert item["original_size"] == (683, 1024)
    # first line of the file: "28 43 541 896 5.0" (y1 x1 y2 x2 MOS)
    assert item["crop_boxes_original"][0].tolist() == [43, 28, 896, 541] and item["mos"][0] == 5.0
    assert item["crop_boxes"][0].tolist() == [16, 10, 336, 203]  # floor(43*.375), floor(28*256/683), ...
    _check_pixel_item(item, TRAIN_WITH_IMAGE, "train")


def test_real_test_item_with_pixels():
    ds = GAICD(GAIC, "test", ids=[TEST_WITH_IMAGE], num_object_boxes=10)
    _check_pixel_item(ds[0], TEST_WITH_IMAGE, "test")


def test_real_geometry_only_all_train():
    start = time.perf_counter()
    ds = GAICD(GAIC, "train", pixels=False)
    total = 0
    for i in range(len(ds)):
        item = ds[i]
        H, W = item["size"]
        assert item["original_size"] == (H, W) and "image" not in item
        crops, objects = item["crop_boxes"], item["object_boxes"]
        assert crops.shape[1] == 4 and objects.shape == (10, 4)
        for b in (crops, objects):
            assert torch.all(b[:, :2] >= 0) and torch.all(b[:, 2] <= W) and torch.all(b[:, 3] <= H)
        assert torch.all(item["mos"] >= 1) and torch.all(item["mos"] <= 5)
        total += len(crops)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"geometry-only loading of {len(ds)} images took {elapsed:.2f} s"
    lines = sum(len(file_rows(GAIC / "annotations" / f"{i}.txt")) for i in ds.ids)
    assert total == lines > GAIC_COUNTS["crop_lines"]  # no MOS -2 row in these files: every line is a crop

    # a second pass is served from the parse cache
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    assert time.perf_counter() - start < elapsed


def test_real_geometry_keeps_file_values():
    ds = GAICD(GAIC, "train", pixels=False, ids=["232649", TRAIN_WITH_IMAGE])
    item = ds[0]
    rows = file_rows(GAIC / "bbox" / "232649.txt")
    assert item["object_boxes"].tolist() == [[r[1], r[0], r[3], r[2]] for r in rows]
    assert [0, 0, 1, 0] in item["object_boxes"].tolist()  # a zero-size box of the official file, kept
    assert ds[1]["crop_lines"].tolist() == list(range(1, len(file_rows(GAIC / "annotations" / f"{TRAIN_WITH_IMAGE}.txt")) + 1))


def test_real_loader_and_model_accept_items():
    from s2c_ops import S2CNet

    loader = DataLoader(GAICD.with_images(GAIC, "test", num_object_boxes=10), batch_size=1, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["image"].dim() == 4 and isinstance(batch["crop_boxes"], list)
    torch.manual_seed(0)
    model = S2CNet("GAICv1").eval()
    with torch.no_grad():
        scores = model(batch["image"], batch["crop_boxes"], batch["object_boxes"])
    assert scores.shape == (len(batch["crop_boxes"][0]),) and torch.isfinite(scores).all()


# ---------------------------------------------------------------------------------------------------
# Synthetic data: items, flip, jitter, reproducibility, collate
# ---------------------------------------------------------------------------------------------------
def test_tiny_items(tiny):
    ds = GAICD(tiny, "train")
    assert ds.ids == ["a", "b"]
    a = ds[0]
    assert a["original_size"] == (60, 100) and tuple(a["image"].shape) == (3, 256, 416)
    assert a["crop_boxes_original"].tolist() == [[20, 10, 80, 50], [0, 0, 100, 60], [10, 5, 90, 55]]
    assert torch.equal(a["crop_boxes"], snapped(a["crop_boxes_original"].tolist(), (60, 100), (256, 416)))
    assert a["crop_boxes"][1].tolist() == [0, 0, 416, 256]  # the whole image stays inside
    assert a["object_boxes_original"].tolist() == [[20, 10, 40, 30], [0, 0, 100, 60], [5, 5, 7, 6]]
    assert a["mos"].tolist() == [3.5, 4.25, 1.0] and a["crop_lines"].tolist() == [1, 2, 3]
    geo = GAICD(tiny, "train", pixels=False)[1]
    assert geo["size"] == (64, 48) and geo["crop_boxes"].tolist() == [[0, 0, 48, 64], [4, 8, 44, 40]]


def test_num_object_boxes(tiny):
    item = GAICD(tiny, "train", pixels=False, num_object_boxes=2)[0]
    assert item["object_boxes"].tolist() == [[20, 10, 40, 30], [0, 0, 100, 60]]
    with pytest.raises(GAICDError, match=r"bbox/a\.txt: holds 3 object boxes, num_object_boxes=5"):
        GAICD(tiny, "train", pixels=False, num_object_boxes=5)[0]
    with pytest.raises(ValueError, match="num_object_boxes"):
        GAICD(tiny, "train", num_object_boxes=0)


def test_zero_size_object_box_becomes_one_pixel(tmp_path):
    root = make_dataset(tmp_path, bboxes={"a": "0 0 0 1\n1 0 1 1\n60 100 60 100\n", "b": BBOX_B})
    objects = GAICD(root, "train", ids=["a"])[0]["object_boxes"]
    assert objects.tolist() == [[0, 0, 5, 1], [0, 4, 5, 5], [415, 255, 416, 256]]


def test_flip_moves_every_box(tiny):
    plain = GAICD(tiny, "train")
    flipped = GAICD(tiny, "train", augment=True, flip_prob=1.0, jitter=0.0)
    for i in range(len(plain)):
        p, f = plain[i], flipped[i]
        assert f["flipped"] and not p["flipped"]
        w = p["image"].shape[-1]
        W = p["original_size"][1]
        assert torch.equal(f["image"], p["image"].flip(-1))
        for key, width in (("crop_boxes", w), ("object_boxes", w), ("crop_boxes_original", W), ("object_boxes_original", W)):
            x1, y1, x2, y2 = p[key].unbind(1)
            assert torch.equal(f[key], torch.stack([width - x2, y1, width - x1, y2], 1)), key
            # flipping twice restores
            assert torch.equal(flip_boxes(f[key], width), p[key]), key
        assert torch.equal(f["image"].flip(-1), p["image"])
        assert torch.equal(f["mos"], p["mos"]) and torch.equal(f["crop_lines"], p["crop_lines"])
        # snapping commutes with the flip: flipped model boxes are the snapped flipped original boxes
        assert torch.equal(f["crop_boxes"], snapped(f["crop_boxes_original"].tolist(), p["original_size"], tuple(p["image"].shape[-2:])))

    geo_plain = GAICD(tiny, "train", pixels=False)[0]
    geo_flip = GAICD(tiny, "train", pixels=False, augment=True, flip_prob=1.0)[0]
    assert torch.equal(geo_flip["crop_boxes"], flip_boxes(geo_plain["crop_boxes"], 100))
    assert geo_flip["crop_boxes"][0].tolist() == [20, 10, 80, 50]  # symmetric crop: x1' = 100 - 80, x2' = 100 - 20
    assert geo_flip["object_boxes"][2].tolist() == [93, 5, 95, 6]


def test_flip_probability_half(tiny):
    ds = GAICD(tiny, "train", pixels=False, augment=True, generator=torch.Generator().manual_seed(3))
    flips = [ds[0]["flipped"] for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_jitter_changes_pixels_only(tiny):
    plain = GAICD(tiny, "train")[0]
    jittered = GAICD(tiny, "train", augment=True, flip_prob=0.0, generator=torch.Generator().manual_seed(0))[0]
    assert jittered["image"].shape == plain["image"].shape and jittered["image"].dtype == torch.float32
    assert not torch.allclose(jittered["image"], plain["image"])
    assert torch.isfinite(jittered["image"]).all()
    for key in ("crop_boxes", "object_boxes", "mos"):
        assert torch.equal(jittered[key], plain[key])
    # modest: pixels stay in the normalised range of [0, 255] RGB and move by a bounded amount
    difference = (jittered["image"] - plain["image"]).abs().mean()
    assert 0 < difference < 1.0


def test_augmentation_reproducible(tiny):
    def run(seed):
        ds = GAICD(tiny, "train", augment=True, generator=torch.Generator().manual_seed(seed))
        return [ds[i % 2] for i in range(6)]

    first, again, other = run(0), run(0), run(1)
    for x, y in zip(first, again):
        assert x["flipped"] == y["flipped"] and torch.equal(x["image"], y["image"])
        assert torch.equal(x["crop_boxes"], y["crop_boxes"])
    assert any(not torch.equal(x["image"], y["image"]) for x, y in zip(first, other))


def test_collate(tiny):
    ds = GAICD(tiny, "train")
    a = ds[0]
    batch = collate([a, a])
    assert tuple(batch["image"].shape) == (2, 3, 256, 416)
    assert batch["id"] == ["a", "a"]
    assert isinstance(batch["crop_boxes"], list) and len(batch["crop_boxes"]) == 2
    assert torch.equal(batch["crop_boxes"][1], a["crop_boxes"])
    assert isinstance(batch["object_boxes"], list) and isinstance(batch["mos"], list)
    assert batch["original_size"] == [(60, 100), (60, 100)]
    with pytest.raises(ValueError, match="batch_size=1"):
        collate([ds[0], ds[1]])
    with pytest.raises(ValueError, match="empty"):
        collate([])

    loader = DataLoader(ds, batch_size=1, shuffle=False, collate_fn=collate)
    batches = list(loader)
    assert [b["id"] for b in batches] == [["a"], ["b"]] and batches[1]["image"].shape[0] == 1
    geo = collate([GAICD(tiny, "train", pixels=False)[i] for i in range(2)])
    assert "image" not in geo and geo["size"] == [(60, 100), (64, 48)] and len(geo["crop_boxes"]) == 2


def test_mos_minus_two_rows_are_skipped(tmp_path):
    ann = "10 20 50 80 3.5\n0 0 60 100 -2\n\n5 10 55 90 1.5\n-5 -5 999 999 -2\n0 0 30 30 2.0\n"
    root = make_dataset(tmp_path, annotations={"a": ann, "b": ANN_B})
    for pixels in (True, False):
        item = GAICD(root, "train", pixels=pixels, ids=["a"])[0]
        assert item["mos"].tolist() == [3.5, 1.5, 2.0]
        assert item["crop_lines"].tolist() == [1, 4, 6]
        key = "crop_boxes_original" if pixels else "crop_boxes"
        assert item[key].tolist() == [[20, 10, 80, 50], [10, 5, 90, 55], [0, 0, 30, 30]]
    parsed = read_annotations(root / "annotations" / "a.txt")
    assert parsed.num_invalid == 2


def test_normalise_mos():
    assert normalise_mos(2.95) == 0.0
    assert normalise_mos(3.75) == pytest.approx(1.0)
    t = torch.tensor([1.0, 2.95, 5.0])
    assert torch.allclose(normalise_mos(t), (t - 2.95) / 0.8)
    assert torch.allclose(denormalise_mos(normalise_mos(t)), t)
    assert torch.allclose(normalise_mos([2.95, 3.75]), torch.tensor([0.0, 1.0]))


def test_boundary_values_allowed(tmp_path):
    root = make_dataset(tmp_path, annotations={"a": "0 0 60 100 3.0\n", "b": ANN_B}, bboxes={"a": "0 0 60 100\n60 100 60 100\n", "b": BBOX_B})
    for pixels in (True, False):
        item = GAICD(root, "train", pixels=pixels, ids=["a"])[0]
        assert len(item["mos"]) == 1


def test_error_pickles():
    e = GAICDError("annotations/a.txt", "bad", 3)
    again = pickle.loads(pickle.dumps(e))
    assert str(again) == str(e) == "annotations/a.txt:3: bad" and again.line == 3
    assert isinstance(again, ValueError)


# ---------------------------------------------------------------------------------------------------
# Malformed data: GAICDError naming the file and the line
# ---------------------------------------------------------------------------------------------------
BROKEN = {
    # name: (annotation text of "a", bbox text of "a", file, line, message part, pixels)
    "too few fields": ("10 20 50 80 3.5\n0 0 60 100 4.2\n5 10 55 3.0\n", BBOX_A, "annotations/a.txt", 3, "expected 5 numbers", False),
    "too many fields": ("10 20 50 80 3.5 1\n", BBOX_A, "annotations/a.txt", 1, "found 6", False),
    "not a number": ("10 20 50 80 3.5\n10 20 fifty 80 3.5\n", BBOX_A, "annotations/a.txt", 2, "fifty", False),
    "nan": ("10 20 50 80 3.5\n10 20 50 80 nan\n", BBOX_A, "annotations/a.txt", 2, "non-finite", False),
    "crop outside (sizes json)": ("10 20 50 80 3.5\n0 0 61 100 3.0\n", BBOX_A, "annotations/a.txt", 2, "outside the 100x60", False),
    "crop outside (image)": ("10 20 50 80 3.5\n0 0 60 101 3.0\n", BBOX_A, "annotations/a.txt", 2, "outside the 100x60", True),
    "negative crop": ("10 20 50 80 3.5\n-1 0 60 100 3.0\n", BBOX_A, "annotations/a.txt", 2, "outside", False),
    "inverted crop": ("10 20 50 80 3.5\n4 4 4 4 3.0\n50 80 10 20 3.0\n", BBOX_A, "annotations/a.txt", 2, "empty or inverted", False),
    "x inverted crop": ("10 80 50 20 3.5\n", BBOX_A, "annotations/a.txt", 1, "empty or inverted", True),
    "MOS out of range": ("10 20 50 80 3.5\n10 20 50 80 7\n", BBOX_A, "annotations/a.txt", 2, "outside [1, 5]", False),
    "object box outside": (ANN_A, "10 20 30 40\n0 0 60 100\n0 0 70 100\n", "bbox/a.txt", 3, "outside the 100x60", True),
    "object box inverted": (ANN_A, "10 20 30 40\n30 20 10 40\n", "bbox/a.txt", 2, "inverted", False),
    "object box fields": (ANN_A, "10 20 30 40\n10 20 30\n", "bbox/a.txt", 2, "expected 4 numbers", False),
    "object box text": (ANN_A, "10 20 30 40 \n\n1 2 3 x\n", "bbox/a.txt", 3, "expected 4 numbers", True),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_malformed_line_raises(tmp_path, name):
    ann, bbox, file, line, part, pixels = BROKEN[name]
    root = make_dataset(tmp_path, annotations={"a": ann, "b": ANN_B}, bboxes={"a": bbox, "b": BBOX_B})
    ds = GAICD(root, "train", pixels=pixels)
    assert len(ds[1]["mos"]) == 2  # the sound image still loads
    with pytest.raises(GAICDError) as info:
        ds[0]
    e = info.value
    assert e.path == root / file and e.line == line
    assert f"{root / file}:{line}: " in str(e) and part in str(e)


@pytest.mark.parametrize(
    "ann,part",
    [("", "annotation file is empty"), ("\n  \n", "annotation file is empty"), ("0 0 10 10 -2\n0 0 20 20 -2\n", "no valid crop: all 2 lines")],
)
def test_empty_annotation_file_raises(tmp_path, ann, part):
    root = make_dataset(tmp_path, annotations={"a": ann, "b": ANN_B})
    for pixels in (True, False):
        with pytest.raises(GAICDError, match=part) as info:
            GAICD(root, "train", pixels=pixels)[0]
        assert info.value.path == root / "annotations" / "a.txt"


def test_empty_bbox_file_raises(tmp_path):
    root = make_dataset(tmp_path, bboxes={"a": "", "b": BBOX_B})
    with pytest.raises(GAICDError, match=r"bbox/a\.txt: object-box file is empty"):
        GAICD(root, "train", pixels=False)[0]


def test_missing_image_raises(tmp_path):
    root = make_dataset(tmp_path, images={"a": ("train", 100, 60), "b": None}, sizes={"a": [100, 60], "b": [48, 64]})
    with pytest.raises(GAICDError, match=r"images/train/b\.jpg: image missing for annotated id b") as info:
        GAICD(root, "train")
    assert "with_images" in str(info.value)
    with pytest.raises(GAICDError, match=r"images/train/b\.jpg"):
        GAICD(root, "train", ids=["b"])
    # the documented ways around it
    assert GAICD.ids_with_images(root, "train") == ["a"]
    assert GAICD.with_images(root, "train").ids == ["a"]
    assert GAICD(root, "train", ids=GAICD.ids_with_images(root, "train"))[0]["id"] == "a"
    assert len(GAICD(root, "train", pixels=False)) == 2


def test_image_deleted_after_init_raises(tiny):
    ds = GAICD(tiny, "train")
    (tiny / "images" / "train" / "a.png").unlink()
    with pytest.raises(GAICDError, match=r"a\.png: image is missing"):
        ds[0]


def test_corrupt_image_raises(tiny):
    (tiny / "images" / "train" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(GAICDError, match=r"a\.png: cannot decode"):
        GAICD(tiny, "train")[0]


def test_missing_bbox_file_raises(tmp_path):
    root = make_dataset(tmp_path, bboxes={"b": BBOX_B})
    for pixels in (True, False):
        with pytest.raises(GAICDError, match=r"bbox/a\.txt: object-box file is missing"):
            GAICD(root, "train", pixels=pixels)
    with pytest.raises(GAICDError, match=r"bbox/a\.txt: object-box file is missing"):
        read_object_boxes(root / "bbox" / "a.txt")


def test_missing_annotation_for_asked_id_raises(tiny):
    (tiny / "annotations" / "b.txt").unlink()
    assert GAICD(tiny, "train").ids == ["a"]  # by default: the ids of the split with annotations
    with pytest.raises(GAICDError, match=r"annotations/b\.txt: annotation file is missing"):
        GAICD(tiny, "train", ids=["b"])
    with pytest.raises(ValueError, match="not in split 'train'"):
        GAICD(tiny, "train", ids=["zzz"])


def test_bad_json_files_raise(tiny):
    (tiny / "image_sizes.json").write_text(json.dumps({"a": [100, 60], "b": [48]}))
    with pytest.raises(GAICDError, match=r"image_sizes\.json: entry 'b'"):
        GAICD(tiny, "train", pixels=False)
    (tiny / "image_sizes.json").write_text(json.dumps({"a": [100, 60]}))
    with pytest.raises(GAICDError, match=r"image_sizes\.json: no \[width, height\] entry for image 'b'"):
        GAICD(tiny, "train", pixels=False)
    (tiny / "split.json").write_text('{"train": ["a",\n "b"\n')
    with pytest.raises(GAICDError, match=r"split\.json:3: not valid JSON"):
        GAICD(tiny, "train")
    (tiny / "split.json").write_text(json.dumps({"train": "a"}))
    with pytest.raises(GAICDError, match=r"split\.json: split 'train' must be a list"):
        GAICD(tiny, "train")
    (tiny / "split.json").write_text(json.dumps({"train": ["a"]}))
    with pytest.raises(ValueError, match=r"split 'test' is not in"):
        GAICD(tiny, "test")
