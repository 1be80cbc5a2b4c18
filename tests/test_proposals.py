"""Object-box proposers (s2c_ops.cropping.proposals): the contract (exactly D valid boxes per image), the padding
rule, given boxes, torchvision detectors, the saliency proposer on real photos, and bad input."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.ops import box_iou

from conftest import REPO
from saliency_cases import blobs
from s2c_ops.cropping import proposals
from s2c_ops.cropping.proposals import (
    Proposer,
    GivenBoxes,
    FacesFirst,
    SaliencyProposer,
    TorchvisionDetector,
    WholeImage,
    create_proposer,
    pad_boxes,
)

PHOTOS = REPO / "s2c_ops" / "demo_photos"


def load_photo(name: str) -> torch.Tensor:
    """A photo as ``Tensor[1, 3, H, W]`` RGB in [0, 1]."""
    path = PHOTOS / name  # shipped with the package: a missing one is a failure, not a skip
    with Image.open(path) as im:
        array = np.asarray(im.convert("RGB")).copy()
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255


class FakeDetector(torch.nn.Module):
    """Returns fixed detections (in no particular order) like a torchvision detection model."""

    def __init__(self, detections):
        super().__init__()
        self.detections = detections
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, images):
        assert isinstance(images, list) and all(im.dim() == 3 for im in images)
        self.calls.append((len(images), self.training, images[0].device))
        return [{k: v.clone() for k, v in d.items()} for d in self.detections[: len(images)]]


def fake_detections():
    return [
        {
            "boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0], [10.0, 10.0, 30.0, 20.0], [0.0, 0.0, 8.0, 9.0], [2.0, 3.0, 4.0, 6.0]]),
            "scores": torch.tensor([0.5, 0.9, 0.2, 0.7]),
            "labels": torch.tensor([1, 2, 1, 3]),
        },
        {
            "boxes": torch.zeros((0, 4)),
            "scores": torch.zeros((0,)),
            "labels": torch.zeros((0,), dtype=torch.int64),
        },
    ]


def all_proposers():
    return {
        "saliency": SaliencyProposer(),
        "image": create_proposer("image"),
        "given": GivenBoxes([torch.tensor([[5.0, 5.0, 20.0, 30.0], [-4.0, 2.0, 300.0, 9.0]]), torch.zeros((0, 4))]),
        "detector": TorchvisionDetector(FakeDetector(fake_detections()), score_threshold=0.3),
    }


def check_contract(out, images, num_boxes):
    b, _, h, w = images.shape
    assert isinstance(out, list) and len(out) == b
    for boxes in out:
        assert boxes.shape == (num_boxes, 4)
        assert boxes.dtype == torch.float32
        assert boxes.device == images.device
        assert not boxes.requires_grad
        assert torch.isfinite(boxes).all()
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


# -- the contract -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["saliency", "image", "given", "detector"])
@pytest.mark.parametrize("num_boxes", [1, 5, 10, 40])
def test_exact_count_and_valid_boxes(name, num_boxes):
    images = blobs(batch=2)
    proposer = all_proposers()[name]
    assert isinstance(proposer, Proposer)
    check_contract(proposer(images, num_boxes), images, num_boxes)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 300), (300, 5), (33, 47)])
def test_saliency_odd_sizes(shape):
    images = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(1))
    check_contract(SaliencyProposer()(images, 10), images, 10)


def test_on_device(device):
    images = blobs(batch=2).to(device)
    for proposer in all_proposers().values():
        check_contract(proposer(images, 5), images, 5)


def test_no_gradients():
    images = blobs(batch=2).requires_grad_()
    for proposer in all_proposers().values():
        assert not proposer(images, 5)[0].requires_grad


def test_empty_batch():
    images = torch.zeros((0, 3, 20, 30))
    for proposer in (SaliencyProposer(), WholeImage(), GivenBoxes([])):
        assert proposer(images, 5) == []


# -- the padding rule ---------------------------------------------------------------------------
def test_pad_boxes_truncates_best_first():
    boxes = torch.tensor([[float(i), 0.0, float(i) + 2, 2.0] for i in range(8)])
    out = pad_boxes(boxes, 5, 10, 20)
    torch.testing.assert_close(out, boxes[:5])


def test_pad_boxes_pads_with_whole_image():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    out = pad_boxes(boxes, 5, 30, 40)
    torch.testing.assert_close(out[:2], boxes)
    torch.testing.assert_close(out[2:], torch.tensor([[0.0, 0.0, 40.0, 30.0]]).expand(3, 4))


def test_pad_boxes_empty_gives_whole_image():
    out = pad_boxes(torch.zeros((0, 4)), 4, 30, 40)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 40.0, 30.0]]).expand(4, 4))
    torch.testing.assert_close(proposals.whole_image_boxes(4, 30, 40), out)


def test_pad_box_sets_is_pad_boxes_per_image():
    """The batched padding gives each image what pad_boxes gives it alone: sets of every length
    (none included), with dropped, inverted and out-of-image rows, truncated and padded."""
    g = torch.Generator().manual_seed(0)
    sets = []
    for length in (0, 3, 12, 1, 0, 7):
        boxes = torch.rand(length, 4, generator=g) * 60 - 10
        if length > 2:
            boxes[1, 0] = float("nan")
            boxes[2] = torch.tensor([45.0, 1.0, 60.0, 5.0])
        sets.append(boxes)
    out = proposals.pad_box_sets(sets, 5, 30, 40)
    assert out.shape == (6, 5, 4) and out.dtype == torch.float32
    for boxes, padded in zip(sets, out):
        assert torch.equal(padded, pad_boxes(boxes, 5, 30, 40))
    assert proposals.pad_box_sets([], 5, 30, 40).shape == (0, 5, 4)


def test_pad_boxes_exact_count_unchanged():
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], dtype=torch.float64)
    out = pad_boxes(boxes, 2, 30, 40)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, boxes.float())


def test_pad_boxes_clamps_fixes_and_drops():
    boxes = torch.tensor(
        [
            [-5.0, -5.0, 50.0, 50.0],  # clamped to the image
            [8.0, 9.0, 2.0, 3.0],  # inverted: swapped
            [float("nan"), 0.0, 5.0, 5.0],  # non-finite: dropped
            [45.0, 1.0, 60.0, 5.0],  # wholly outside (x > width): dropped
            [3.0, 3.0, 3.0, 8.0],  # zero width: dropped
            [1.0, 1.0, float("inf"), 4.0],  # non-finite: dropped
            [4.0, 4.0, 6.0, 6.0],
        ]
    )
    out = pad_boxes(boxes, 4, 30, 40)
    expected = torch.tensor([[0.0, 0.0, 40.0, 30.0], [2.0, 3.0, 8.0, 9.0], [4.0, 4.0, 6.0, 6.0], [0.0, 0.0, 40.0, 30.0]])
    torch.testing.assert_close(out, expected)


def test_pad_boxes_integer_input():
    out = pad_boxes(torch.tensor([[1, 2, 3, 4]]), 2, 10, 10)
    assert out.dtype == torch.float32 and out.shape == (2, 4)


@pytest.mark.parametrize(
    "args, error",
    [
        ((torch.zeros(4), 3, 10, 10), ValueError),
        ((torch.zeros(2, 5), 3, 10, 10), ValueError),
        (([[0, 0, 1, 1]], 3, 10, 10), TypeError),
        ((torch.zeros(1, 4), 0, 10, 10), ValueError),
        ((torch.zeros(1, 4), 2.5, 10, 10), TypeError),
        ((torch.zeros(1, 4), 3, 0, 10), ValueError),
    ],
)
def test_pad_boxes_errors(args, error):
    with pytest.raises(error):
        pad_boxes(*args)


# -- given boxes --------------------------------------------------------------------------------
def test_given_boxes_list():
    images = torch.rand(2, 3, 30, 40)
    a = torch.tensor([[1.0, 2.0, 10.0, 12.0], [3.0, 3.0, 9.0, 9.0], [0.0, 0.0, 5.0, 5.0]])
    b = torch.tensor([[5.0, 5.0, 25.0, 20.0]], dtype=torch.float64)
    out = GivenBoxes([a, b])(images, 2)
    torch.testing.assert_close(out[0], a[:2])
    torch.testing.assert_close(out[1], torch.tensor([[5.0, 5.0, 25.0, 20.0], [0.0, 0.0, 40.0, 30.0]]))


def test_given_boxes_tensor_forms():
    images = torch.rand(2, 3, 30, 40)
    stacked = torch.tensor([[[1.0, 2.0, 10.0, 12.0]], [[5.0, 5.0, 25.0, 20.0]]])
    whole = torch.tensor([0.0, 0.0, 40.0, 30.0])
    out = GivenBoxes(stacked)(images, 2)
    torch.testing.assert_close(out[1], torch.stack([stacked[1, 0], whole]))
    rois = torch.tensor([[1.0, 5.0, 5.0, 25.0, 20.0], [1.0, 1.0, 1.0, 2.0, 2.0]])  # image 0 has none
    out = GivenBoxes(rois)(images, 3)
    torch.testing.assert_close(out[0], whole.expand(3, 4))
    torch.testing.assert_close(out[1], torch.stack([rois[0, 1:], rois[1, 1:], whole]))
    out = GivenBoxes(stacked[0])(images[:1], 1)  # Tensor[L, 4]: one image
    torch.testing.assert_close(out[0], stacked[0])


def test_given_boxes_count_mismatch():
    with pytest.raises(ValueError, match="2 image"):
        GivenBoxes([torch.zeros((1, 4)), torch.zeros((1, 4))])(torch.rand(3, 3, 10, 10), 2)
    with pytest.raises(ValueError, match="image 4"):
        GivenBoxes(torch.tensor([[4.0, 0.0, 0.0, 1.0, 1.0]]))(torch.rand(2, 3, 10, 10), 2)


@pytest.mark.parametrize(
    "boxes, error",
    [
        ("boxes", TypeError),
        ([[0.0, 0.0, 1.0, 1.0]], TypeError),
        ([torch.zeros(3)], ValueError),
        (torch.zeros(2, 3), ValueError),
        (torch.zeros(2, 2, 2, 4), ValueError),
        (torch.tensor([[-1.0, 0.0, 0.0, 1.0, 1.0]]), ValueError),
    ],
)
def test_given_boxes_errors(boxes, error):
    with pytest.raises(error):
        GivenBoxes(boxes)


# -- registry -----------------------------------------------------------------------------------
def test_registry():
    assert isinstance(create_proposer("default"), FacesFirst) and isinstance(create_proposer("default").objects, SaliencyProposer)
    assert create_proposer(nms_threshold=0.4).objects.nms_threshold == 0.4
    assert isinstance(create_proposer("Saliency", nms_threshold=0.4), SaliencyProposer)
    assert create_proposer("saliency", nms_threshold=0.4).nms_threshold == 0.4
    images = torch.rand(2, 3, 30, 40)
    for boxes in create_proposer("image")(images, 3):
        torch.testing.assert_close(boxes, torch.tensor([[0.0, 0.0, 40.0, 30.0]]).expand(3, 4))
    with pytest.raises(ValueError, match="unknown proposer .faster-rcnn.; valid names: default, image, "):
        create_proposer("faster-rcnn")
    assert {"default", "image", "saliency"} <= set(proposals.list_proposers())
    with pytest.raises(ValueError, match="already registered"):
        proposals.register_proposer("saliency", SaliencyProposer)
    proposals.register_proposer("Coarse", lambda **kw: SaliencyProposer(resolution=32, **kw), overwrite=True)
    assert "coarse" in proposals.list_proposers() and create_proposer("coarse").resolution == 32


# -- torchvision detectors ----------------------------------------------------------------------
def test_detector_ranks_thresholds_and_pads():
    model = FakeDetector(fake_detections()).train()
    detector = TorchvisionDetector(model, score_threshold=0.3)
    out = detector(torch.rand(2, 3, 40, 50), 4)
    assert model.calls == [(2, False, torch.device("cpu"))]  # called in eval mode, one list
    whole = torch.tensor([0.0, 0.0, 50.0, 40.0])
    expected0 = torch.stack(
        [torch.tensor([10.0, 10.0, 30.0, 20.0]), torch.tensor([2.0, 3.0, 4.0, 6.0]), torch.tensor([1.0, 1.0, 5.0, 5.0]), whole]
    )
    torch.testing.assert_close(out[0], expected0)  # 0.9, 0.7, 0.5; 0.2 is under the threshold
    torch.testing.assert_close(out[1], whole.expand(4, 4))
    torch.testing.assert_close(detector(torch.rand(2, 3, 40, 50), 2)[0], expected0[:2])


def test_detector_threshold_and_labels():
    detector = TorchvisionDetector(FakeDetector(fake_detections()), score_threshold=0.0, labels=[1])
    out = detector(torch.rand(2, 3, 40, 50), 3)
    torch.testing.assert_close(out[0][:2], torch.tensor([[1.0, 1.0, 5.0, 5.0], [0.0, 0.0, 8.0, 9.0]]))


def test_detector_bad_output():
    class Bad(torch.nn.Module):
        def forward(self, images):
            return {"boxes": torch.zeros(0, 4)}

    with pytest.raises(RuntimeError, match="list"):
        TorchvisionDetector(Bad())(torch.rand(1, 3, 10, 10), 2)
    with pytest.raises(TypeError):
        TorchvisionDetector("fasterrcnn")


def test_torchvision_faster_rcnn_adapter():
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3
    )
    images = torch.rand(2, 3, 64, 96)
    for threshold in (0.0, 1.1):  # random weights: everything, then nothing, above the threshold
        out = TorchvisionDetector(model, score_threshold=threshold)(images, 5)
        check_contract(out, images, 5)
    assert not model.training
    assert (out[0] == torch.tensor([0.0, 0.0, 96.0, 64.0])).all()


# -- the saliency proposer ----------------------------------------------------------------------
def test_saliency_batch_consistency_and_determinism():
    images = torch.cat([blobs(batch=3, seed=2), torch.rand(1, 3, 72, 104, generator=torch.Generator().manual_seed(3))])
    proposer = SaliencyProposer()
    batched = proposer(images, 10)
    again = proposer(images, 10)
    for i in range(images.shape[0]):
        torch.testing.assert_close(batched[i], again[i], rtol=0, atol=0)
        torch.testing.assert_close(batched[i], proposer(images[i : i + 1], 10)[0], rtol=0, atol=0)


def test_saliency_finds_a_bright_square():
    images = torch.full((1, 3, 90, 120), 0.2)
    images[:, :, 30:60, 70:100] = torch.tensor([0.9, 0.8, 0.1]).view(3, 1, 1)
    boxes = SaliencyProposer()(images, 5)[0]
    square = (70.0, 30.0, 100.0, 60.0)
    # The top box holds the square with a margin (the low threshold takes in the map's blur);
    # spectral residual saliency also marks its edges, so the next boxes are parts of it. The flat image's
    # map has ties at the threshold levels: how wide the margin is depends on the CPU's rounding (IoU 0.27
    # on an AVX-512 machine, above 0.3 on others).
    assert coverage(boxes[:1], square).item() > 0.95
    assert iou(boxes[0], square).item() > 0.25
    assert iou(boxes[:2], square).max().item() > 0.4


def test_saliency_flat_image_gives_whole_image():
    for value in (0.0, 0.5, 1.0):
        images = torch.full((2, 3, 40, 60), value)
        for boxes in SaliencyProposer()(images, 3):
            torch.testing.assert_close(boxes, torch.tensor([[0.0, 0.0, 60.0, 40.0]]).expand(3, 4))


def test_saliency_nan_is_refused_clearly_and_never_crashes():
    images = blobs(batch=1)
    images[:, :, :10, :10] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        SaliencyProposer()(images, 10)
    check_contract(SaliencyProposer().propose_objects(images, 10, validate=False).boxes, images, 10)


def test_saliency_scores_ranked():
    (boxes, scores), = SaliencyProposer().propose_scored(blobs(batch=1))
    assert boxes.shape[0] == scores.shape[0] > 1
    assert (scores[:-1] >= scores[1:]).all()


def test_saliency_bad_settings():
    for kwargs in ({"levels": ()}, {"levels": (0.5, 1.0)}, {"nms_threshold": 0.0}, {"resolution": 4},
                   {"min_area": 0.5, "max_area": 0.4}, {"spectral_weight": 0.0, "colour_weight": 0.0}):
        with pytest.raises(ValueError):
            SaliencyProposer(**kwargs)


def iou(a, b):
    return box_iou(a.view(-1, 4), torch.tensor([b], dtype=torch.float32))[:, 0]


def coverage(boxes, region):
    """The fraction of ``region`` inside each box."""
    r = torch.tensor(region, dtype=torch.float32)
    w = (torch.minimum(boxes[:, 2], r[2]) - torch.maximum(boxes[:, 0], r[0])).clamp_min(0)
    h = (torch.minimum(boxes[:, 3], r[3]) - torch.maximum(boxes[:, 1], r[1])).clamp_min(0)
    return w * h / ((r[2] - r[0]) * (r[3] - r[1]))


# Regions of interest drawn by hand on the photos (x1, y1, x2, y2 in their own pixels).
CAT_FACE = (120, 70, 360, 280)  # chelsea.png: eyes, nose and mouth
CAT_LEFT_EYE = (133, 82, 208, 148)
CUP = (170, 15, 410, 310)  # coffee.png: the cup with its handle, without the saucer
ROCKET = (300, 125, 345, 410)  # rocket.jpg: the rocket on the pad
ASTRONAUT = (20, 15, 370, 512)  # astronaut.png: the person


@pytest.fixture(scope="module")
def photo_boxes():
    """Each photo's 10 boxes at its own size and at the model's size (short side 256), mapped back."""
    proposer = SaliencyProposer()
    out = {}
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"):
        image = load_photo(name)
        h, w = image.shape[-2:]
        s = 256 / min(h, w)
        small = torch.nn.functional.interpolate(image, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)
        back = torch.tensor([w / small.shape[-1], h / small.shape[-2]] * 2)
        out[name] = [proposer(image, 10)[0], proposer(small, 10)[0] * back, (h, w)]
    return out


@pytest.mark.parametrize("scale", [0, 1], ids=["native", "model-size"])
def test_photo_cat(photo_boxes, scale):
    boxes = photo_boxes["chelsea.png"][scale]
    assert iou(boxes[0], CAT_FACE).item() > 0.5  # the top box is the cat's face
    assert iou(boxes, CAT_LEFT_EYE).max().item() > 0.4  # and an eye is boxed


@pytest.mark.parametrize("scale", [0, 1], ids=["native", "model-size"])
def test_photo_coffee(photo_boxes, scale):
    boxes = photo_boxes["coffee.png"][scale]
    assert coverage(boxes[:1], CUP).item() > 0.9  # the top box holds the cup
    assert iou(boxes[:3], CUP).max().item() > 0.5  # and one of the first three is the cup


@pytest.mark.parametrize("scale", [0, 1], ids=["native", "model-size"])
def test_photo_rocket(photo_boxes, scale):
    boxes = photo_boxes["rocket.jpg"][scale]
    h, w = photo_boxes["rocket.jpg"][2]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (h * w)
    # one of the first three boxes holds most of the rocket and is not the whole scene
    assert ((coverage(boxes[:3], ROCKET) > 0.7) & (area[:3] < 0.25)).any()


@pytest.mark.parametrize("scale", [0, 1], ids=["native", "model-size"])
def test_photo_astronaut(photo_boxes, scale):
    assert iou(photo_boxes["astronaut.png"][scale][0], ASTRONAUT).item() > 0.4


def test_photo_boxes_differ(photo_boxes):
    """Real photos give real proposals, not only the whole-image padding."""
    for name, (boxes, _, (h, w)) in photo_boxes.items():
        whole = torch.tensor([0.0, 0.0, w, h])
        assert (boxes != whole).any(dim=1).sum() >= 5, name


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["saliency", "image", "given", "detector"])
@pytest.mark.parametrize(
    "images, num_boxes, error, match",
    [
        (torch.rand(3, 20, 30), 5, ValueError, "4-D"),
        (torch.rand(1, 1, 3, 20, 30), 5, ValueError, "4-D"),
        (torch.rand(1, 4, 20, 30), 5, ValueError, "3"),
        (torch.rand(1, 1, 20, 30), 5, ValueError, "3"),
        (torch.rand(1, 3, 0, 30), 5, ValueError, "height"),
        (torch.randint(0, 255, (1, 3, 20, 30), dtype=torch.uint8), 5, TypeError, "floating"),
        (np.zeros((1, 3, 20, 30), dtype=np.float32), 5, TypeError, "Tensor"),
        (torch.rand(1, 3, 20, 30), 0, ValueError, "num_boxes"),
        (torch.rand(1, 3, 20, 30), -2, ValueError, "num_boxes"),
        (torch.rand(1, 3, 20, 30), 2.0, TypeError, "num_boxes"),
        (torch.rand(1, 3, 20, 30), True, TypeError, "num_boxes"),
    ],
)
def test_bad_input(name, images, num_boxes, error, match):
    with pytest.raises(error, match=match):
        all_proposers()[name](images, num_boxes)


@pytest.mark.parametrize("name", ["saliency", "detector"])
def test_unnormalised_range_rejected(name):
    proposer = all_proposers()[name]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        proposer(torch.rand(1, 3, 20, 30) * 255, 3)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with pytest.raises(ValueError, match="undo the mean/std normalisation"):
        proposer((torch.rand(1, 3, 20, 30) - mean) / std, 3)
    # the package's one pixel check: an overshoot past its 1e-3 tolerance names the fix, clamped it passes
    overshoot = torch.rand(1, 3, 20, 30) * 1.1 - 0.05
    with pytest.raises(ValueError, match=r"clamp\(0, 1\)"):
        proposer(overshoot, 3)
    check_contract(proposer(overshoot.clamp(0, 1), 3), torch.zeros(1, 3, 20, 30), 3)


def test_faces_first_puts_the_heads_before_the_other_boxes():
    face = torch.tensor([[10.0, 10.0, 20.0, 22.0]])
    given = GivenBoxes([torch.tensor([[0.0, 0.0, 30.0, 30.0]])])
    found = FacesFirst(given, faces=lambda images: [face for _ in images]).propose_objects(torch.rand(1, 3, 40, 60), 3)
    assert torch.equal(found.faces[0], face)
    # The head: 30% of the face's width each side, 50% of its height above, 25% below (FaceRule.head).
    torch.testing.assert_close(found.boxes[0], torch.tensor([[7.0, 4.0, 23.0, 25.0], [0.0, 0.0, 30.0, 30.0],
                                                            [0.0, 0.0, 60.0, 40.0]]))
    assert create_proposer("saliency").propose_objects(torch.rand(1, 3, 40, 60), 3).faces[0].shape == (0, 4)
    with pytest.raises(TypeError, match="Proposer"):
        FacesFirst(lambda images, n: [])
