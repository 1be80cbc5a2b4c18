"""The model's input has a capped long side (OfficialPreprocess.max_long_side, MAX_LONG_SIDE): photos of
any aspect ratio cost about what an ordinary photo does, and their crops still lie inside them.
benchmarks/bench_extreme_shapes.py measures the time and memory."""
import pytest
from PIL import Image

from s2c_ops import Cropper
from s2c_ops.cropping.proposals import get_proposer
from s2c_ops.cropping.transforms import MAX_LONG_SIDE, OfficialPreprocess


@pytest.mark.parametrize("size, expected", [
    ((40, 10000), (32, 1024)),
    ((10000, 40), (1024, 32)),
    ((40, 4000), (32, 1024)),
    ((1000, 4000), (256, 1024)),  # 4:1 and narrower: the official size
    ((1080, 1920), (256, 448)),
    ((20, 20), (256, 256)),
])
def test_long_side_capped(size, expected):
    assert OfficialPreprocess().output_size(*size) == expected
    assert max(expected) <= MAX_LONG_SIDE


def test_max_long_side_argument():
    assert OfficialPreprocess(max_long_side=512).output_size(100, 1000) == (64, 512)
    for bad in (1000, 128):
        with pytest.raises(ValueError, match="max_long_side"):
            OfficialPreprocess(max_long_side=bad)


@pytest.fixture(scope="module")
def cropper():
    return Cropper(proposer=get_proposer("saliency"))  # the default model


@pytest.mark.parametrize("width, height", [(10000, 40), (40, 10000)])
def test_extreme_photo(cropper, width, height):
    photo = Image.new("RGB", (width, height))
    resized, _ = cropper.prepare(photo)
    assert max(resized.shape[-2:]) == MAX_LONG_SIDE and min(resized.shape[-2:]) == 32
    (result,) = cropper.crop(photo, "1:1")
    x1, y1, x2, y2 = result.boxes[0].tolist()
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert abs((x2 - x1) - (y2 - y1)) < 0.5
