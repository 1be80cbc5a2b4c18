"""The one image path (s2c_ops.cropping.images): upright, 8-bit RGB, the same pixels for every caller."""
import numpy as np
import pytest
import torch
from PIL import Image

from s2c_ops import Cropper
from s2c_ops.cropping.images import ImageTooLarge, image_to_tensor, load_image, to_rgb, upright


def _rotated(tmp_path):
    """Stored 60 wide x 40 high with EXIF orientation 6 (upright: 40 wide x 60 high), left half dark."""
    a = np.full((40, 60, 3), 220, np.uint8)
    a[:, :30] = 20
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    return tmp_path / "r.jpg"


def test_exif_orientation_switch(tmp_path):
    im = Image.open(_rotated(tmp_path))
    assert image_to_tensor(im).shape == (3, 60, 40)
    assert image_to_tensor(im, apply_exif_orientation=False).shape == (3, 40, 60)
    assert load_image(tmp_path / "r.jpg").size == (40, 60)
    assert load_image(tmp_path / "r.jpg", apply_exif_orientation=False).size == (60, 40)
    # orientation 6: the stored left half (dark) is the upright top
    t = image_to_tensor(im).float()
    assert t[:, :30].mean() < 60 and t[:, 30:].mean() > 180


def test_cropper_boxes_follow_the_switch(tmp_path):
    im = Image.open(_rotated(tmp_path))
    up = Cropper(proposer=None).crop(im, "1:2")[0].boxes
    stored = Cropper(apply_exif_orientation=False).crop(im, "1:2")[0].boxes
    assert float(up[:, 3].max()) <= 60 and float(up[:, 2].max()) <= 40
    assert float(stored[:, 2].max()) <= 60 and float(stored[:, 3].max()) <= 40


def test_modes_to_rgb():
    sixteen = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert np.asarray(to_rgb(sixteen)).min() == 255  # scaled, not clipped to 255 of 65535
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255  # transparent over white
    assert to_rgb(Image.new("L", (4, 4), 7)).mode == "RGB"
    pal = Image.new("P", (4, 4))
    assert to_rgb(pal).mode == "RGB"


def test_tensors_pass_through():
    x = torch.rand(3, 8, 8)
    assert torch.equal(image_to_tensor(x), (x * 255).round().to(torch.uint8))
    u = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    assert image_to_tensor(u) is u
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        image_to_tensor(torch.rand(4, 8, 8))
    with pytest.raises(TypeError, match="PIL image"):
        image_to_tensor("photo.jpg")


def test_broken_exif_is_ignored():
    im = Image.new("RGB", (6, 4))
    im.info["exif"] = b"Exif\x00\x00garbage"
    assert upright(im) is im


def test_bomb_limit(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # past it, under twice it: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageTooLarge, match="decompression-bomb limit"):
        load_image(tmp_path / "x.png")



def test_the_detail_is_resized_as_uint8_within_one_level_of_a_float_resize():
    """transforms.finer (the photo at the faces' second look's resolution) resizes uint8 as uint8 on the CPU."""
    import torch.nn.functional as F

    from s2c_ops.cropping.transforms import Resize, finer

    torch.manual_seed(0)
    photo = torch.randint(0, 256, (3, 900, 1200), dtype=torch.uint8)
    geometry = Resize((900, 1200), (256, 352))
    detail = finer(photo, geometry, 1.5)
    assert detail.dtype == torch.uint8 and detail.shape == (3, 384, 528)
    in_float = F.interpolate(photo[None].float(), size=(384, 528), mode="bilinear", antialias=True)[0]
    assert float((detail - in_float).abs().max()) <= 1
    assert finer(detail, geometry, 1.5) is detail  # already that size: as it is
    assert finer(photo.float() / 255, geometry, 1.5).dtype == torch.float32  # float stays float
