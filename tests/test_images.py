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


@pytest.mark.parametrize("compression", ["tiff_lzw", "raw"])
def test_a_sideways_tiff_is_turned_once(tmp_path, compression, capsys):
    """Pillow 11+ opens a TIFF of orientation 5-8 at its upright size and turns it as it loads it; the sides
    were swapped a second time (boxes outside the photo, a square "16:9" written). The same photo as PNG
    is the reference, through the Cropper and s2c crop."""
    from test_crop_cli import read_jsonl, run_cli

    a = np.full((180, 320, 3), 230, np.uint8)
    a[:90, :160] = (200, 30, 30)
    a[90:, 160:] = (30, 30, 200)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "p.tif", exif=exif.tobytes(), compression=compression)
    Image.fromarray(a).save(tmp_path / "p.png", exif=exif.tobytes())
    cropper = Cropper(proposer="saliency")
    boxes = {name: cropper.crop(Image.open(tmp_path / name), "16:9")[0].boxes for name in ("p.tif", "p.png")}
    torch.testing.assert_close(boxes["p.tif"], boxes["p.png"])
    assert float(boxes["p.png"][0, 2]) <= 180
    rc, _, err = run_cli(["crop", tmp_path / "p.tif", tmp_path / "p.png", "--ratio", "16:9", "--proposer", "saliency",
                          "--out", tmp_path / "out", "--json", tmp_path / "j.jsonl"], capsys)
    assert rc == 0, err
    tif, png = read_jsonl(tmp_path / "j.jsonl")
    assert (tif["width"], tif["height"]) == (png["width"], png["height"]) == (180, 320)
    assert tif["boxes"] == png["boxes"]
    assert Image.open(tif["outputs"][0]).size == Image.open(png["outputs"][0]).size == (180, 101)


def test_modes_to_rgb():
    sixteen = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert np.asarray(to_rgb(sixteen)).min() == 255  # scaled, not clipped to 255 of 65535
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255  # transparent over white
    assert to_rgb(Image.new("L", (4, 4), 7)).mode == "RGB"
    pal = Image.new("P", (4, 4))
    assert to_rgb(pal).mode == "RGB"
    nan = np.full((4, 4), np.nan, np.float32)
    with pytest.raises(ValueError, match="only NaN values"):
        to_rgb(Image.fromarray(nan, "F"))
    nan[0, 0] = 1.0  # a float image with some values missing: those are black
    assert np.asarray(to_rgb(Image.fromarray(nan, "F")))[0, 0].tolist() == [255, 255, 255]


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


def _big_jpeg(path, width, height, orientation=1):
    """A smooth JPEG (a gradient with a bright disc) of ``width`` x ``height`` stored pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.stack([x / width * 200, y / height * 200, np.full_like(x, 90)], -1)
    a[(x - 0.7 * width) ** 2 + (y - 0.4 * height) ** 2 < (0.1 * min(width, height)) ** 2] = 250
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a.astype(np.uint8)).save(path, quality=90, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation, switch", [(1, True), (6, True), (6, False)])
def test_cropper_decodes_an_unopened_jpeg_reduced_and_leaves_it_alone(tmp_path, orientation, switch, monkeypatch):
    """Cropper.crop(Image.open(jpeg)) decodes its own reduced copy (a draft) for the model and the second
    look: the caller's image stays undecoded and full size, and the crops match those of the full decode."""
    from s2c_ops.cropping import cropper as cropper_module
    from s2c_ops.cropping.images import draft, reopened

    drafts = []

    def spy(im, *args, **kwargs):
        drafts.append((draft(im, *args, **kwargs), im.size))
        return drafts[-1][0]

    monkeypatch.setattr(cropper_module, "draft", spy)
    path = _big_jpeg(tmp_path / "big.jpg", 2400, 1800, orientation)
    cropper = Cropper(apply_exif_orientation=switch)
    lazy = Image.open(path)
    copy = reopened(lazy)
    assert copy is not None and copy is not lazy
    copy.close()
    resized, geometry, detail = cropper._prepare(lazy)
    assert drafts == [(True, (1200, 900))]  # half of each side: at least twice 1.5x the model's 352 x 256
    assert lazy.tile and lazy.size == (2400, 1800)  # not decoded, not drafted
    full = Image.open(path)
    full.load()
    assert reopened(full) is None  # decoded already: not drafted
    in_full = image_to_tensor(full, apply_exif_orientation=switch)  # a tensor is taken in full
    resized_full, geometry_full, detail_full = cropper._prepare(in_full)
    assert geometry == geometry_full and resized.shape == resized_full.shape
    assert (resized - resized_full).abs().mean() < 2
    assert (detail(1.5).float() - detail_full(1.5).float()).abs().mean() < 2 / 255
    drafted, = cropper.crop(Image.open(path), "4:5")
    whole, = cropper.crop(in_full, "4:5")
    assert torch.allclose(drafted.boxes[0], whole.boxes[0], atol=2 * max(geometry.original) / 256)


def test_a_draft_keeps_the_photo_s_own_model_size(tmp_path, monkeypatch):
    """A draft's sides are rounded up from the photo's, which can round the model's input to another multiple
    of 32: the model's pixels still have the size of the photo's own resize (2475 x 1200: 512 wide, where the
    1/2 draft, 1238 x 600, alone would give 544)."""
    from s2c_ops.cli.crop.decode import decode
    from s2c_ops.cropping import cropper as cropper_module
    from s2c_ops.cropping.images import draft
    from s2c_ops.cropping.proposals import SaliencyProposer
    from s2c_ops.cropping.transforms import OfficialPreprocess

    path = _big_jpeg(tmp_path / "wide.jpg", 2475, 1200)
    preprocess = OfficialPreprocess(antialias=True)
    assert preprocess.output_size(600, 1238) == (256, 544) and preprocess.output_size(1200, 2475) == (256, 512)
    decoded = decode(str(path), preprocess, keep_full=False, use_draft=True)
    assert decoded.geometry.resized == (256, 512) and decoded.pixels.shape == (3, 256, 512)
    drafted = []

    def spy(im, *args, **kwargs):
        drafted.append(draft(im, *args, **kwargs) and im.size)
        return bool(drafted[-1])

    monkeypatch.setattr(cropper_module, "draft", spy)
    resized, geometry, _ = Cropper(proposer=SaliencyProposer())._prepare(Image.open(path))
    assert drafted == [(1238, 600)]
    assert geometry.original == (1200, 2475) and tuple(resized.shape[-2:]) == geometry.resized == (256, 512)


def test_scoring_refuses_pixels_that_are_not_the_geometry_s_size():
    """Pixels and geometry that disagree (as a draft's rounding made them) are an error, not misplaced boxes."""
    from s2c_ops.cropping.proposals import SaliencyProposer

    cropper = Cropper(proposer=SaliencyProposer())
    resized, geometry, _ = cropper._prepare(torch.zeros(3, 274, 599, dtype=torch.uint8))
    boxes = torch.tensor([[0.0, 0.0, 274.0, 274.0]])
    assert cropper._score_images([resized], [geometry], [boxes])[0].shape == (1,)
    with pytest.raises(ValueError, match="geometry says"):
        cropper._score_images([resized[:, :, :-32]], [geometry], [boxes])


@pytest.mark.parametrize("kind", ["L", "CMYK", "progressive", "truncated"])
def test_a_drafted_jpeg_of_any_kind_crops_as_decoded_in_full(tmp_path, kind):
    """Grayscale, CMYK and progressive JPEGs give the Cropper the same crop drafted as decoded in full, and a
    truncated one the same error."""
    from s2c_ops.cropping.proposals import SaliencyProposer

    rgb = Image.open(_big_jpeg(tmp_path / "rgb.jpg", 2400, 1800))
    path = tmp_path / f"{kind}.jpg"
    if kind == "truncated":
        data = (tmp_path / "rgb.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        rgb.convert(kind if kind != "progressive" else "RGB").save(path, quality=90, progressive=kind == "progressive")
    cropper = Cropper(proposer=SaliencyProposer())
    if kind == "truncated":
        with pytest.raises(OSError, match="truncated"):
            cropper.crop(Image.open(path), "4:5")
        with pytest.raises(OSError, match="truncated"):
            Image.open(path).load()
        return
    full = Image.open(path)
    full.load()
    drafted, = cropper.crop(Image.open(path), "4:5")
    whole, = cropper.crop(full, "4:5")
    assert torch.allclose(drafted.boxes[0], whole.boxes[0], atol=2 * 2400 / 256)


def test_a_large_decoded_photo_is_reduced_before_its_conversion(tmp_path, monkeypatch):
    """A decoded PIL photo four times the pixels it needs is reduced (means of k x k blocks) before the
    Cropper converts it, keeping twice those pixels; its crops match those of the same photo as a tensor,
    which is taken in full. s2c crop reduces a large PNG the same way."""
    from s2c_ops.cli.crop.decode import decode
    from s2c_ops.cropping import cropper as cropper_module
    from s2c_ops.cropping.images import reduced
    from s2c_ops.cropping.transforms import OfficialPreprocess

    sizes = []

    def spy(im, *args, **kwargs):
        out = reduced(im, *args, **kwargs)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(cropper_module, "reduced", spy)
    photo = Image.open(_big_jpeg(tmp_path / "big.jpg", 2400, 1800))
    photo.load()
    cropper = Cropper()
    resized, geometry, detail = cropper._prepare(photo)
    assert sizes == [(1200, 900)]  # k = 2: at least twice 1.5x the model's 352 x 256
    as_tensor = image_to_tensor(photo)
    resized_t, geometry_t, detail_t = cropper._prepare(as_tensor)
    assert geometry == geometry_t and (resized - resized_t).abs().mean() < 2
    assert (detail(1.5).float() - detail_t(1.5).float()).abs().mean() < 2 / 255
    mine, = cropper.crop(photo, "4:5")
    theirs, = cropper.crop(as_tensor, "4:5")
    assert torch.allclose(mine.boxes[0], theirs.boxes[0], atol=2 * 2400 / 256)
    palette = photo.convert("P")
    assert reduced(palette, (256, 352)) is palette  # a mode reduce() does not average: taken in full

    photo.save(tmp_path / "big.png")
    preprocess = OfficialPreprocess(antialias=True)
    small = decode(str(tmp_path / "big.png"), preprocess, keep_full=False, use_draft=True, detail=1.5)
    full = decode(str(tmp_path / "big.png"), preprocess, keep_full=False, use_draft=False, detail=1.5)
    assert small.geometry == full.geometry and (small.pixels.float() - full.pixels.float()).abs().mean() < 2
    assert (small.pixels.float() - resized).abs().mean() < 1  # the Cropper's pixels
