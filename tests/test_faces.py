"""The face detector (MTCNN in PyTorch, shipped weights) and the faces-first default proposer."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import box_iou
from torchvision.transforms.functional import pil_to_tensor

from conftest import SHARED
from s2c_ops import Cropper
from s2c_ops.models import create_model
from s2c_ops.cropping.face_rule import faces_cut
from s2c_ops.ops.boxes import kept_share
from s2c_ops.cropping import FaceRule
from s2c_ops.cropping.proposals import FaceDetector, FacesFirst, create_proposer
from s2c_ops.cropping.proposals.faces import MTCNNNets, published_names

PHOTOS = Path(__file__).resolve().parents[1] / "s2c_ops" / "demo_photos"
#: The astronaut's face in astronaut.png (512 x 512), by eye.
ASTRONAUT_FACE = torch.tensor([[172.0, 66.0, 278.0, 161.0]])


def photo(name: str, short_side: int = 256, folder: Path = PHOTOS) -> torch.Tensor:
    x = pil_to_tensor(Image.open(folder / name).convert("RGB"))[None].float() / 255
    h, w = x.shape[-2:]
    scale = short_side / min(h, w)
    return F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)


def test_finds_the_astronaut_and_no_face_elsewhere():
    detector = FaceDetector()
    found = detector(photo("astronaut.png"))[0] * 2  # back to 512 pixels
    assert found.shape == (1, 4)
    assert float(box_iou(found, ASTRONAUT_FACE)) > 0.6
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        assert detector(photo(name))[0].shape == (0, 4), name


EDGE_PHOTO = SHARED / "data" / "FCDB" / "images" / "2679602215_dcc3424fb3_b.jpg"


@pytest.mark.skipif(not EDGE_PHOTO.exists(), reason="needs ../shared/data/FCDB")
@pytest.mark.parametrize("short_side", [240, 256, 288])
def test_finds_a_face_at_the_photo_s_edge(short_side):
    """A face whose right side nearly touches the photo's (818 of 824 pixels, by eye): the refining stages'
    square crops reach past the edge, where a black band made O-Net miss it (probability 0.03 against 0.94
    with the edge's pixels repeated)."""
    face = torch.tensor([[676.0, 589, 818, 730]])
    x = photo(EDGE_PHOTO.name, short_side, EDGE_PHOTO.parent)
    found = FaceDetector()(x)[0] * (824 / x.shape[-1])
    assert len(found) and float(box_iou(found, face).max()) > 0.5


def test_fixed_size_form_and_host_reads_agree():
    images = torch.cat([photo("astronaut.png"), photo("chelsea.png")[..., :256]])
    detector = FaceDetector()
    fast = detector.detect(images)
    fixed = detector.detect(images, host_reads=False)
    assert fast.boxes.shape == (2, 32, 4) and fast.valid.shape == fast.scores.shape == (2, 32)
    assert fast.valid.sum(1).tolist() == [1, 0]
    assert torch.equal(fast.valid, fixed.valid)
    # The refining networks see fewer rows on the host-read path: the CPU's kernels may sum in another order.
    torch.testing.assert_close(fast.boxes[fast.valid], fixed.boxes[fixed.valid], rtol=0, atol=1e-4)
    torch.testing.assert_close(fast.scores[fast.valid], fixed.scores[fixed.valid], rtol=0, atol=1e-5)
    assert (fast.scores[fast.valid] >= 0.7).all()


def test_an_image_s_faces_do_not_depend_on_its_batch():
    astronaut = photo("astronaut.png")
    alone = FaceDetector()(astronaut)[0]
    batched = FaceDetector()(torch.cat([torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)),
                                        astronaut]))[2]
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-3)


def test_takes_every_photo_form_and_refuses_other_input():
    """The package's photo forms (PIL, uint8 in 0..255, float in [0, 1], one or a batch or a list) find the
    same face; 0..255 floats, other dtypes and shapes raise (a uint8 batch once silently found no face)."""
    pil = Image.open(PHOTOS / "astronaut.png").convert("RGB")
    uint8 = pil_to_tensor(pil)
    expected = FaceDetector()(uint8.float()[None] / 255)[0]
    assert expected.shape == (1, 4)
    detector = FaceDetector()
    for given in (pil, uint8, uint8[None], uint8.float() / 255):
        (found,) = detector(given)
        torch.testing.assert_close(found, expected)
    assert [f.shape for f in detector([uint8, pil.crop((0, 300, 300, 512))])] == [(1, 4), (0, 4)]
    assert detector(torch.rand(0, 3, 64, 64)) == [] and detector([]) == []
    with pytest.raises(ValueError, match="divide 8-bit values"):
        detector(uint8.float()[None])
    with pytest.raises(TypeError, match="uint8 or float"):
        detector(uint8.int()[None])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) RGB batch, got shape \(1, 4, 64, 64\)"):
        detector(torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="PIL images or \\(3, H, W\\) tensors"):
        detector(uint8[0])


def test_small_images_and_settings():
    detector = FaceDetector()
    assert detector.scales(11, 300) == []
    assert detector(torch.rand(1, 3, 11, 300))[0].shape == (0, 4)
    scales = detector.scales(256, 384)
    assert scales[0] == pytest.approx(12 / (0.06 * 256)) and 256 * scales[-1] >= 12 > 256 * scales[-1] * 0.709
    for bad in (dict(min_face=0), dict(factor=1.0), dict(thresholds=(0.5, 0.5)), dict(candidates=(0, 1, 1))):
        with pytest.raises(ValueError):
            FaceDetector(**bad)


def test_published_names_map_onto_the_networks():
    mine = set(MTCNNNets().state_dict())
    published = {k.replace("body.", "").replace("dense.", "").replace("heads.", "") for k in mine}
    published |= {"onet.dense6_3.weight", "onet.dense6_3.bias"}  # the landmark head, left out
    assert set(published_names({k: torch.zeros(1) for k in published})) == mine


def test_default_proposer_puts_the_head_first():
    image = photo("astronaut.png")
    proposer = create_proposer("default")
    assert isinstance(proposer, FacesFirst) and isinstance(create_proposer("default").faces, FaceDetector)
    found = proposer.propose_objects(image, 10)
    face = found.faces[0]
    assert face.shape == (1, 4)
    assert torch.equal(found.boxes[0][0], FaceRule().heads(face, 256, 256)[0])
    saliency_only = create_proposer("saliency").propose_objects(image, 10)
    assert saliency_only.faces[0].shape == (0, 4)


@pytest.mark.parametrize("ratio", ["16:9", "1:1", "4:5"])
def test_the_default_cropper_keeps_the_astronaut_s_face(ratio):
    """Whole and inside: leaving her face out cuts nothing, but is no crop of the photo."""
    crop = Cropper().crop(Image.open(PHOTOS / "astronaut.png"), ratio)[0].boxes[:1]
    assert int(faces_cut(crop, ASTRONAUT_FACE)[0]) == 0
    assert float(kept_share(crop, ASTRONAUT_FACE)[0]) >= 0.95


def test_the_cropper_tells_a_face_using_scorer_which_images_have_faces():
    seen = []

    class Recorder:
        bbox_num = 10
        uses_faces = True

        def __call__(self, images, crops, objects, faces=None):
            seen.append(faces)
            return torch.zeros(sum(len(c) for c in crops))

    photos = [Image.open(PHOTOS / name) for name in ("astronaut.png", "chelsea.png")]
    Cropper(Recorder(), batch_size=1).crop(photos, "1:1")
    assert seen == [[True], [False]]
    Cropper(Recorder(), batch_size=1, face_rule=None).crop(photos[:1], "1:1")
    assert seen[-1] is None


def test_second_look_finds_the_faces_of_a_group_the_first_pass_misses():
    from s2c_ops.cropping.proposals import FacesFirst, SaliencyProposer, SecondLook

    path = Path(SHARED) / "data/FCDB/images/22940946360_f5d702c0d0_c.jpg"
    if not path.exists():
        pytest.skip("needs ../shared/data/FCDB")
    photo = Image.open(path)
    first = Cropper(proposer=FacesFirst(SaliencyProposer(), FaceDetector(second_look=None)))
    looked = Cropper(first.model, FacesFirst(SaliencyProposer(), FaceDetector()))  # on by default
    resized, _, none = first._prepare(photo)
    assert none is None  # no second look: no detail made
    without = first._find_objects([resized], [none])[0][1]
    once = looked._find_objects([resized])[0][1]  # no details: no second look
    twice = looked._find_objects([resized], [looked._prepare(photo)[2]])[0][1]
    assert len(without) == len(once) >= 1
    assert len(twice) > len(once) and torch.equal(twice[: len(once)], once)  # the first pass's faces first
    look = SecondLook()
    tallest = float((once[:, 3] - once[:, 1]).max())
    more = twice[len(once):]
    heights = more[:, 3] - more[:, 1]
    assert (heights >= look.smallest * tallest - 1).all() and (heights <= look.largest * tallest + 1).all()
    # Only in the rows around the faces found.
    assert (more[:, 1] >= once[:, 1].min() - look.band * tallest - 1).all()
    assert (more[:, 3] <= once[:, 3].max() + look.band * tallest + 1).all()


def test_no_second_look_where_the_first_pass_finds_the_faces_sought():
    """The astronaut's face is 57 px tall at 256: faces of half that are ones the first pass finds, so the
    photo is never resized for a second look; a photo without faces is not either."""
    from s2c_ops.cropping.proposals import SecondLook

    detector = FaceDetector()
    asked = []

    def detail(factor):
        asked.append(factor)
        raise AssertionError("no second look expected")

    image = photo("astronaut.png")
    faces = detector(image)
    assert len(faces[0]) == 1
    assert detector.look_again(faces, [detail], 256, 256)[0] is faces[0]
    assert detector.look_again([faces[0][:0]], [detail], 256, 256)[0].shape == (0, 4)
    assert not asked
    smaller = SecondLook(reliable=float(faces[0][0, 3] - faces[0][0, 1]))  # now a second look is worth it
    detector.second_look = smaller
    looked = detector.look_again(faces, [lambda f: F.interpolate(image, scale_factor=f, mode="bilinear")], 256, 256)
    assert torch.equal(looked[0][:1], faces[0])


def test_second_look_settings_are_checked():
    from s2c_ops.cropping.proposals import SecondLook

    for bad in ({"factor": 1.0}, {"smallest": 2.0, "largest": 1.0}, {"overlap": 0.0}, {"band": -1.0},
                {"reliable": 0.0}):
        with pytest.raises(ValueError, match="SecondLook needs"):
            SecondLook(**bad)
    with pytest.raises(TypeError, match="second_look must be"):
        FaceDetector(second_look=(1.5, 0.5, 1.5))
    assert FaceDetector().second_look == SecondLook()  # on by default
    assert FaceDetector(second_look=None).second_look is None


def test_the_cropper_makes_a_photo_s_detail_once_small_at_the_second_look_s_resolution():
    """The detail is made with the model's pixels from one conversion of the photo, at the proposer's factor
    (uint8, resized as uint8: within one level of a float resize), whatever the photo's size."""
    from s2c_ops.cropping.proposals import SaliencyProposer

    photo = torch.randint(0, 256, (3, 1200, 1600), dtype=torch.uint8)
    cropper = Cropper(create_model("prior"))
    resized, geometry, detail = cropper._prepare(photo)
    assert geometry.resized == (256, 352) and detail.pixels.shape == (1, 3, 384, 528)
    assert detail.pixels.dtype == torch.uint8
    image = detail(1.5)
    assert image.dtype == torch.float32 and image.shape == (1, 3, 384, 528)
    in_float = F.interpolate(photo[None].float(), size=(384, 528), mode="bilinear", antialias=True) / 255
    assert float((image - in_float).abs().max()) <= 1 / 255 + 1e-6
    assert detail(2.0).shape == (1, 3, 512, 704)  # another factor: resized from what is held
    no_look = Cropper(create_model("prior"), FacesFirst(SaliencyProposer(), FaceDetector(second_look=None)))
    assert no_look._prepare(photo)[2] is None


def test_proposers_say_whether_they_ask_for_details():
    """The Cropper and s2c crop make each photo's detail (and s2c crop drafts JPEGs to the second look's
    resolution) only for a proposer that asks for details."""
    from s2c_ops.cropping.proposals import FacesFirst, SaliencyProposer, SecondLook

    assert create_proposer("default").detail_factor == SecondLook().factor
    assert FacesFirst(SaliencyProposer(), FaceDetector(second_look=SecondLook(factor=2.0))).detail_factor == 2.0
    assert FacesFirst(SaliencyProposer(), FaceDetector(second_look=None)).detail_factor is None
    assert FacesFirst(SaliencyProposer(), faces=lambda x: [x.new_zeros((0, 4))] * len(x)).detail_factor is None
    assert SaliencyProposer().detail_factor is None
