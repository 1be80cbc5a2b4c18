"""Candidate crops: the official GAIC grid (against the golden files) and any-ratio crops."""
import math

import pytest
import torch

from conftest import golden_path
from s2c_ops.cropping.candidates import grid_anchors, parse_ratio, ratio_anchors

GOLDEN = [("ssc_GAICv1_256x384.pt", 256, 384), ("ssc_GAICv2_320x256.pt", 320, 256)]
SIZES = [(256, 384), (384, 256), (1024, 683), (64, 64), (40, 500)]
RATIOS = [16 / 9, 4 / 3, 1.0, 9 / 16, 3.0]


def _load(name):
    return torch.load(golden_path(name), weights_only=True)


def _largest(height, width, ratio):
    w0 = min(width, height * ratio)
    return w0, w0 / ratio


# ---------------------------------------------------------------- grid_anchors


@pytest.mark.parametrize("name,height,width", GOLDEN)
def test_grid_anchors_equal_golden(name, height, width):
    gold = _load(name)
    assert tuple(gold["image"].shape[-2:]) == (height, width)  # (H, W) of the image the boxes belong to
    expected = gold["crop_boxes"]
    assert torch.all(expected[:, 0] == 0)
    boxes = grid_anchors(height, width)
    assert boxes.dtype == torch.float32 and boxes.shape == (expected.shape[0], 4)
    assert torch.equal(boxes, expected[:, 1:])


@pytest.mark.parametrize("name,height,width", GOLDEN)
def test_grid_anchors_transposed_size_differs(name, height, width):
    expected = _load(name)["crop_boxes"][:, 1:]
    other = grid_anchors(width, height)
    assert other.shape != expected.shape or not torch.equal(other, expected)


@pytest.mark.parametrize(
    "height,width,count",
    [(256, 384, 83), (384, 256, 83), (320, 256, 90), (256, 256, 90), (683, 1024, 83), (768, 1024, 87)],
)
def test_grid_anchors_counts_and_rule(height, width, count):
    boxes = grid_anchors(height, width).double()
    assert boxes.shape == (count, 4)
    x1, y1, x2, y2 = boxes.unbind(1)
    assert torch.all(x1 >= 0) and torch.all(y1 >= 0) and torch.all(x2 <= width) and torch.all(y2 <= height)
    w, h = x2 - x1, y2 - y1
    assert torch.all(w * h >= 0.5 * width * height * (1 - 1e-6))  # at least half the image
    aspect = w / h
    assert torch.all(aspect > 0.5) and torch.all(aspect < 2.0)
    assert torch.unique(boxes, dim=0).shape[0] == count


def test_grid_anchors_order_is_y1_x1_y2_x2():
    boxes = grid_anchors(256, 384)
    keys = [(y1, x1, y2, x2) for x1, y1, x2, y2 in boxes.tolist()]
    assert keys == sorted(keys)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "256", None])
def test_grid_anchors_bad_size(bad):
    with pytest.raises(ValueError):
        grid_anchors(bad, 384)
    with pytest.raises(ValueError):
        grid_anchors(256, bad)


# ---------------------------------------------------------------- ratio_anchors


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("ratio", RATIOS)
def test_ratio_anchors_properties(height, width, ratio):
    try:
        boxes = ratio_anchors(height, width, ratio)
    except ValueError:
        w0, h0 = _largest(height, width, ratio)
        assert min(w0, h0) < 16  # only when the ratio cannot be held at the default min_size
        return
    assert boxes.dtype == torch.float32 and boxes.dim() == 2 and boxes.shape[1] == 4
    n = boxes.shape[0]
    assert 1 <= n <= 200
    b = boxes.double()
    x1, y1, x2, y2 = b.unbind(1)
    w, h = x2 - x1, y2 - y1
    # requested ratio within one pixel
    assert torch.all((w - h * ratio).abs() <= 1.0) and torch.all((h - w / ratio).abs() <= 1.0)
    assert torch.all((w / h - ratio).abs() <= 1e-4 * ratio)  # exact up to float32 rounding
    # inside the image
    assert torch.all(x1 >= 0) and torch.all(y1 >= 0) and torch.all(x2 <= width) and torch.all(y2 <= height)
    # no duplicates, even at whole pixels
    assert torch.unique(boxes.round(), dim=0).shape[0] == n
    # area fraction and minimum size
    w0, h0 = _largest(height, width, ratio)
    assert torch.all(w * h >= 0.5 * w0 * h0 * (1 - 1e-4))
    assert torch.all(w >= 16 - 1e-4) and torch.all(h >= 16 - 1e-4)
    # the largest box is there, first and centred
    assert abs(w[0] - w0) < 1e-3 and abs(h[0] - h0) < 1e-3
    assert abs((x1[0] + x2[0]) / 2 - width / 2) < 1e-3 and abs((y1[0] + y2[0]) / 2 - height / 2) < 1e-3
    assert torch.all(w * h <= w0 * h0 * (1 + 1e-5))
    # deterministic
    assert torch.equal(boxes, ratio_anchors(height, width, ratio))


@pytest.mark.parametrize("height,width", [(256, 384), (384, 256), (1024, 683)])
@pytest.mark.parametrize("ratio", RATIOS)
def test_ratio_anchors_typical_counts(height, width, ratio):
    assert 50 <= ratio_anchors(height, width, ratio).shape[0] <= 200


def test_ratio_anchors_same_ratio_as_image_starts_with_whole_image():
    boxes = ratio_anchors(256, 384, 1.5)
    assert torch.allclose(boxes[0], torch.tensor([0.0, 0.0, 384.0, 256.0]))


@pytest.mark.parametrize("max_count", [1, 7, 50])
def test_ratio_anchors_thinning(max_count):
    full = ratio_anchors(1024, 683, 9 / 16, max_count=10**6)
    assert full.shape[0] > max_count
    thin = ratio_anchors(1024, 683, 9 / 16, max_count=max_count)
    assert thin.shape[0] == max_count
    assert torch.equal(thin[0], full[0])
    # an ordered, evenly spread subset of the full list
    index = [next(i for i in range(full.shape[0]) if torch.equal(full[i], row)) for row in thin]
    assert index == sorted(index) and len(set(index)) == max_count
    if max_count > 1:
        gaps = torch.tensor(index).diff().double()
        assert index[-1] == full.shape[0] - 1 and gaps.max() - gaps.min() <= 1


def test_ratio_anchors_options():
    base = ratio_anchors(683, 1024, 4 / 3)
    fewer = ratio_anchors(683, 1024, 4 / 3, num_scales=2, grid=4)
    assert fewer.shape[0] < base.shape[0]
    tight = ratio_anchors(683, 1024, 4 / 3, min_area=0.9)
    w0, h0 = _largest(683, 1024, 4 / 3)
    area = (tight[:, 2] - tight[:, 0]).double() * (tight[:, 3] - tight[:, 1]).double()
    assert torch.all(area >= 0.9 * w0 * h0 * (1 - 1e-5))
    one = ratio_anchors(683, 1024, 4 / 3, min_area=1.0, num_scales=1)
    assert torch.allclose(one[:, 2] - one[:, 0], torch.tensor(w0, dtype=torch.float32))
    big = ratio_anchors(683, 1024, 4 / 3, min_size=400)
    assert torch.all(big[:, 2:] - big[:, :2] >= 400 - 1e-3)


@pytest.mark.parametrize("ratio", [0, -1.0, math.inf, -math.inf, math.nan, True, "16:9", None])
def test_ratio_anchors_bad_ratio(ratio):
    with pytest.raises(ValueError):
        ratio_anchors(256, 384, ratio)


@pytest.mark.parametrize(
    "height,width,ratio",
    [(40, 500, 1 / 3), (40, 500, 1 / 20), (10, 10, 1.0), (256, 384, 100.0), (256, 384, 0.01)],
)
def test_ratio_anchors_ratio_not_holdable(height, width, ratio):
    with pytest.raises(ValueError, match="cannot hold"):
        ratio_anchors(height, width, ratio)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(height=0, width=384),
        dict(height=256, width=-1),
        dict(height=256.0, width=384),
        dict(height=256, width="384"),
        dict(min_area=0.0),
        dict(min_area=1.5),
        dict(max_count=0),
        dict(num_scales=0),
        dict(grid=0),
        dict(min_size=0),
        dict(min_size=math.nan),
    ],
)
def test_ratio_anchors_bad_arguments(kwargs):
    args = dict(height=256, width=384, ratio=1.0)
    args.update(kwargs)
    height, width, ratio = args.pop("height"), args.pop("width"), args.pop("ratio")
    with pytest.raises(ValueError):
        ratio_anchors(height, width, ratio, **args)


# ---------------------------------------------------------------- parse_ratio


@pytest.mark.parametrize(
    "text,value",
    [
        ("16:9", 16 / 9),
        ("4/3", 4 / 3),
        ("1.5", 1.5),
        (1.5, 1.5),
        (2, 2.0),
        (" 9 : 16 ", 9 / 16),
        ("1:1", 1.0),
        ("2.35:1", 2.35),
    ],
)
def test_parse_ratio(text, value):
    assert parse_ratio(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    "bad",
    [
        "0:1", "1:0", "abc", "-4:3", "4:-3", "-1.5", "0", 0, -2.0,
        "inf", "nan", math.inf, math.nan, "", "16:9:1", "4/", True, "1_1", "16_0:9", "1_000",
    ],
)
def test_parse_ratio_rejects(bad):
    with pytest.raises(ValueError) as info:
        parse_ratio(bad)
    assert repr(bad) in str(info.value)
