"""Float pixels the package cannot use (s2c_ops/cropping/pixels.py) raise ValueError naming the range
and the fix, at each entry point: Cropper.crop / crop_ratios / score and the batched scoring on tensors and
AestheticCrop; PIL images and uint8 tensors pass as they are."""
import pytest
import torch
from PIL import Image

from s2c_kornia import AestheticCrop
from s2c_ops import Cropper
from s2c_ops.cropping.pixels import check_unit_range
from s2c_ops.cropping.proposals import create_proposer
from s2c_ops.models.prior import GeometryPrior


def photo(seed=0) -> torch.Tensor:
    return torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(seed))


def with_nan() -> torch.Tensor:
    x = photo()
    x[1, 10, 20] = float("nan")
    return x


BAD = {
    "nan": (with_nan, "NaN"),
    "inf": (lambda: photo().index_fill(2, torch.tensor([3]), float("inf")), "infinite"),
    "0..255": (lambda: photo() * 255, r"got values from .* to 25\d.*divide 8-bit values \(0\.\.255\) by 255"),
    "normalised": (lambda: (photo() - 0.45) / 0.226, "undo the mean/std normalisation"),
    "overshoot": (lambda: photo() * 1.02, r"clamp\(0, 1\)"),
}


@pytest.fixture(scope="module")
def cropper():
    return Cropper(GeometryPrior.default(), create_proposer("image"))


@pytest.mark.parametrize("case", list(BAD))
def test_check_unit_range(case):
    make, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        check_unit_range(make())
    check_unit_range(make(), validate=False)
    check_unit_range(photo())
    check_unit_range(photo().to(torch.float16))
    check_unit_range(photo().clamp(1e-4, 1) * (1 + 1e-6) - 1e-6)  # resampling's rounding past the ends passes


@pytest.mark.parametrize("case", list(BAD))
def test_cropper_refuses(cropper, case):
    make, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        cropper.crop(make(), "16:9")
    with pytest.raises(ValueError, match=message):
        cropper.crop_ratios(torch.stack([photo(), make()]), ["1:1", "4:3"])
    with pytest.raises(ValueError, match=message):
        cropper.score(make(), torch.tensor([[0.0, 0.0, 20.0, 20.0]]))
    with pytest.raises(ValueError, match=message):
        cropper._score_candidates(make()[None], "4:3")  # validate=None checks on the CPU
    cropper._score_candidates(make()[None], "4:3", validate=False)


def test_cropper_takes_pil_uint8_and_unit_floats(cropper):
    x = photo()
    u8 = (x * 255).round().to(torch.uint8)
    pil = Image.fromarray(u8.permute(1, 2, 0).numpy())
    boxes = [cropper.crop(image, "16:9")[0].boxes for image in (x, u8, pil)]
    torch.testing.assert_close(boxes[1], boxes[2])
    assert boxes[0].shape == (1, 4)


@pytest.mark.parametrize("case", ["nan", "0..255"])
def test_aesthetic_crop_refuses(case):
    make, message = BAD[case]
    aug = AestheticCrop("4:3", size=(48, 64), model=GeometryPrior.default(), proposer="image")
    with pytest.raises(ValueError, match=message):
        aug(make())
    assert aug(photo()).shape == (1, 3, 48, 64)
    off = AestheticCrop("4:3", size=(48, 64), model=GeometryPrior.default(), proposer="image", validate=False)
    assert off(make()).shape == (1, 3, 48, 64)


def test_aesthetic_crop_validate_argument():
    with pytest.raises(ValueError, match="validate must be None, True or False"):
        AestheticCrop("4:3", validate="yes")
