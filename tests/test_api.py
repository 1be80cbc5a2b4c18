"""The 1.0 surface of ../shared/API.md: every promised name imports where API.md says, and the Cropper keeps its
conventions (photos in one convention, the ratio required, ``"free"``, results in the order asked, ``score``)."""
import inspect
import os

import pytest
import torch
from PIL import Image

from conftest import REPO
from s2c_ops import CropResult, Cropper
from s2c_ops.cropping.candidates import FREE, grid_anchors
from s2c_ops.models import create_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEMO = REPO / "s2c_ops" / "demo_photos"

PROMISED = {
    "s2c_ops": ["rod_align", "gaic_roi_align", "S2CNet", "S2CNetConfig", "Cropper", "CropResult"],
    "s2c_ops.ops": ["rod_align", "gaic_roi_align", "RoDAlign", "GaicRoIAlign"],
    "s2c_ops.models": ["list_models", "create_model", "register_model", "load"],
    "s2c_ops.models.backbones": ["list_backbones", "create_backbone", "register_backbone"],
    "s2c_ops.cropping": ["FaceDetector", "FaceRule", "Cropper", "CropResult"],
    "s2c_ops.cropping.candidates": ["grid_anchors", "ratio_anchors"],
    "s2c_ops.cropping.proposals": ["list_proposers", "create_proposer", "register_proposer"],
    "s2c_kornia": ["AestheticCrop", "CropTable"],
    "s2c_ops.data": ["GAICD", "FCDB"],
    "s2c_ops.data.metrics": ["srcc", "pcc", "acc_k", "wacc", "iou", "bde"],
}


@pytest.mark.parametrize("module", sorted(PROMISED))
def test_every_promised_name_imports(module):
    pytest.importorskip("kornia") if module == "s2c_kornia" else None
    mod = __import__(module, fromlist=["_"])
    for name in PROMISED[module]:
        assert getattr(mod, name) is not None, f"{module}.{name}"
        assert name in getattr(mod, "__all__", [name]), f"{module}.__all__ lacks {name}"


def test_the_promised_signatures():
    import s2c_ops
    from s2c_ops.models import create_model

    assert torch.ops.s2c.rod_align.default and torch.ops.s2c.gaic_roi_align.default
    assert hasattr(s2c_ops.S2CNet, "from_official") and hasattr(create_model("prior"), "save")
    assert list(inspect.signature(create_model).parameters) == ["name", "pretrained", "checkpoint_path", "kwargs"]
    crop = inspect.signature(Cropper.crop).parameters
    assert list(crop) == ["self", "photos", "ratio", "top_k"] and crop["ratio"].default is inspect.Parameter.empty
    assert list(inspect.signature(Cropper.crop_ratios).parameters) == ["self", "photos", "ratios", "top_k"]
    assert list(inspect.signature(Cropper.score).parameters) == ["self", "photos", "boxes"]
    public = {n for n in dir(Cropper) if not n.startswith("_")}
    assert public == {"crop", "crop_ratios", "score"}, public
    assert {"ratio", "boxes", "scores"} == set(inspect.signature(CropResult).parameters)
    from s2c_ops.models import list_models

    assert {"default", "prior", "s2cnet_gaicv1", "s2cnet_gaicv2"} <= set(list_models())


@pytest.fixture(scope="module")
def cropper():
    return Cropper(create_model("prior"))


@pytest.fixture(scope="module")
def photos():
    return [Image.open(DEMO / name).convert("RGB") for name in ("coffee.png", "astronaut.png")]


def test_the_ratio_is_required(cropper, photos):
    with pytest.raises(TypeError):
        cropper.crop(photos[0])  # no silent squares
    with pytest.raises(TypeError, match="for one ratio, call crop"):
        cropper.crop_ratios(photos[0], "16:9")


def test_one_photo_convention(cropper, photos):
    """PIL, uint8 0..255 and float [0, 1] give the same crops; a batch and a list give one result per photo."""
    pil = photos[0]
    uint8 = torch.from_numpy(__import__("numpy").array(pil)).permute(2, 0, 1)
    expected = cropper.crop(pil, "4:3")[0]
    for photo in (uint8, uint8.float() / 255):
        got = cropper.crop(photo, "4:3")[0]
        assert torch.equal(got.boxes, expected.boxes) and torch.allclose(got.scores, expected.scores)
    assert len(cropper.crop(torch.stack([uint8, uint8]), "1:1")) == 2 and len(cropper.crop(photos, "1:1")) == 2


def test_crop_ratios_come_in_the_order_given(cropper, photos):
    asked = ["1:1", "free", "16/9", 0.8, "16:9"]
    results = cropper.crop_ratios(photos, asked, top_k=2)
    assert [[r.ratio for r in per_photo] for per_photo in results] == [[1.0, FREE, 16 / 9, 0.8, 16 / 9]] * 2
    for per_photo, photo in zip(results, photos):
        for ratio, result in zip(asked, per_photo):
            alone = cropper.crop(photo, ratio, top_k=2)[0]
            assert torch.equal(result.boxes, alone.boxes) and torch.allclose(result.scores, alone.scores)


def test_free_form_is_the_best_of_the_official_grid(cropper, photos):
    for photo in photos:
        result = cropper.crop(photo, "free", top_k=3)[0]
        grid = grid_anchors(photo.height, photo.width)
        assert result.ratio == FREE and result.boxes.shape == (3, 4)
        assert any(torch.equal(result.boxes[0], box) for box in grid)  # a crop of the grid, any shape
        scores = cropper.score(photo, grid)[0]
        assert torch.allclose(result.scores, scores.sort(descending=True).values[:3])


def test_score_gives_the_scores_crop_ranks_by(photos):
    """``score`` of a ratio's candidates gives the scores ``crop`` ranked them by (the default model decodes a set
    as a whole, so the whole set is given), in the photo's pixels."""
    cropper = Cropper()
    photo = photos[1]  # a face: the face rule's charges are in the scores too
    every = cropper.crop(photo, "4:5", top_k=10_000)[0]
    scores = cropper.score(photo, every.boxes)[0]
    assert scores.dtype == torch.float32 and torch.allclose(scores, every.scores, atol=1e-5)
    small = photo.resize((photo.width // 2, photo.height // 2))
    assert len(cropper.score([photo, small], [every.boxes[:3], every.boxes[:5] / 2])[1]) == 5


@pytest.mark.parametrize("boxes, message", [
    (torch.zeros(0, 4), "shape"), (torch.zeros(3, 5), "shape"), (torch.tensor([[10.0, 10, 5, 20]]), "x2 > x1"),
    (torch.tensor([[0.0, 0, float("nan"), 20]]), "finite"),
    (torch.tensor([[0.0, 0, 10, 10], [1e4, 1e4, 2e4, 2e4]]), r"the box \[10000.0, 10000.0, 20000.0, 20000.0\] lies outside the"),
    (torch.tensor([[-50.0, 0, 0, 10]]), r"the box \[-50.0, 0.0, 0.0, 10.0\] lies outside")])
def test_score_refuses_bad_boxes(cropper, photos, boxes, message):
    with pytest.raises(ValueError, match=message):
        cropper.score(photos[0], boxes)
    with pytest.raises(ValueError, match="one Tensor"):
        cropper.score(photos, [torch.tensor([[0.0, 0, 10, 10]])])


def test_s2c_crop_free_form(tmp_path, capsys):
    from test_crop_cli import read_jsonl, run_cli

    rc, _, _ = run_cli(["crop", DEMO / "coffee.png", "--ratio", "free", "--ratio", "1:1", "--model", "prior",
                        "--out", tmp_path / "out", "--json", tmp_path / "r.jsonl"], capsys)
    assert rc == 0
    free = next(r for r in read_jsonl(tmp_path / "r.jsonl") if r["ratio_text"] == "free")
    expected = Cropper(create_model("prior")).crop(Image.open(DEMO / "coffee.png"), "free")[0]
    assert free["ratio"] == "free" and torch.allclose(torch.tensor(free["boxes"]), expected.boxes, atol=1e-3)
    x1, y1, x2, y2 = (round(v) for v in free["boxes"][0])
    assert Image.open(tmp_path / "out" / "coffee_free.png").size == (x2 - x1, y2 - y1)
    rc, _, err = run_cli(["table", DEMO / "coffee.png", "--ratio", "free", "--out", tmp_path / "t.safetensors"], capsys)
    assert rc == 2 and "--ratio free" in err


def test_aesthetic_crop_signature():
    kornia_crop = pytest.importorskip("s2c_kornia")
    params = inspect.signature(kornia_crop.AestheticCrop).parameters
    assert list(params)[:10] == ["ratio", "size", "model", "proposer", "top_k", "temperature", "p", "same_on_batch",
                                 "keepdim", "cropping_mode"]
    assert {"validate", "table"} <= set(params)


@pytest.mark.parametrize("gives, says", [
    (lambda n: torch.zeros(n, 1), r"one score per crop, a Tensor\[\d+\], got \(\d+, 1\)"),
    (lambda n: torch.zeros(n - 1), "one score per crop"),
    (lambda n: None, "got NoneType"),
    (lambda n: torch.zeros(n).index_fill_(0, torch.tensor([3]), float("nan")), "scored 1 of \\d+ crops NaN"),
])
def test_a_scorer_s_output_is_checked(photos, gives, says):
    """A scorer of its own (any callable of S2CNet's form): scores of another shape gave boxes of another
    shape or a torch error from deep inside, and a NaN score was ranked first."""
    def scorer(images, crop_boxes, object_boxes, **options):
        return gives(sum(len(b) for b in crop_boxes))

    with pytest.raises(ValueError, match=says):
        Cropper(scorer, num_boxes=10).crop(photos[0], "1:1")
