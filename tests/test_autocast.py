"""Cropping under ``torch.autocast`` (bfloat16 on the CPU): the same top-1 crops as float32 on the demo photos,
float32 scores out, the proposers, the geometry prior, the blend's decoding and AestheticCrop's resampling
in float32 (``s2c_ops.precision.full_precision``). FCDB-wide agreement: benchmarks/autocast_agreement.py."""
import numpy as np
import pytest
import torch
from PIL import Image

from s2c_ops import Cropper
from s2c_ops.models import create_model
from s2c_ops.precision import full_precision

from test_crop_cli import DEMO

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"]


@pytest.fixture(scope="module")
def croppers():
    return {name: Cropper(create_model(name)) for name in ("default", "prior")}


@pytest.mark.parametrize("name", ["default", "prior"])
def test_same_top1_under_bfloat16(croppers, name):
    cropper = croppers[name]
    images = [Image.open(DEMO / f) for f in PHOTOS]
    exact = cropper.crop_ratios(images, ["16:9", "1:1"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cropper.crop_ratios(images, ["16:9", "1:1"])
    for e, lo in zip(exact, low):
        for a, b in zip(e, lo):
            assert b.scores.dtype == torch.float32
            assert torch.equal(a.boxes[0], b.boxes[0])
            assert torch.allclose(a.scores, b.scores, atol=0.02)


def test_a_bare_s2cnet_gives_float32_scores_to_the_cropper():
    from s2c_ops import S2CNet

    torch.manual_seed(0)
    cropper = Cropper(S2CNet("GAICv1").eval())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = cropper.crop(Image.open(DEMO / "coffee.png"), "16:9", top_k=3)[0]
    assert result.scores.dtype == torch.float32 and result.boxes.shape == (3, 4)


def test_aesthetic_crop_pixels_unchanged_under_autocast():
    pytest.importorskip("kornia")
    from s2c_kornia import AestheticCrop

    image = torch.from_numpy(np.array(Image.open(DEMO / "coffee.png").convert("RGB"))).permute(2, 0, 1)[None] / 255
    crop = AestheticCrop("16:9", size=(90, 160))
    exact = crop(image)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = crop(image)
    assert low.dtype == torch.float32 and torch.equal(exact, low)  # the same crop, resampled in float32


def test_full_precision_only_inside_autocast():
    with full_precision("cpu"):
        assert torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
