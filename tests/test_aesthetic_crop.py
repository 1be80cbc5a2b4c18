"""s2c_kornia.AestheticCrop, in the style of Kornia's augmentation suite (CommonTests): smoke, shapes,
p=0 identity, p=1 crops, batch and same_on_batch, composition, inverse, containers with boxes /
keypoints / masks, exceptions, determinism; the ratio and placement of the chosen crops; the real
models. Most tests score with a cheap content-aware callable (mean brightness inside the crop) and the
whole-image proposer, so the file runs in seconds on a CPU."""
from importlib import resources

import kornia.augmentation as K
import pytest
import torch

import s2c_ops
from s2c_kornia import AestheticCrop
from s2c_ops.models.registry import DEFAULT_WEIGHTS
from s2c_ops.cropping.candidates import MIN_CROP_SIDE
from s2c_ops.cropping.candidates import pixel_crops, ratio_anchors


class Brightness:
    """A crop's score is the mean (normalised) brightness inside it: deterministic, content-aware,
    cheap. Counts its calls."""

    bbox_num = 2  # the Scorer contract (s2c_ops.models.scorer)

    def __init__(self):
        self.calls = 0

    def __call__(self, images, crop_boxes, object_boxes):
        self.calls += 1
        assert len(object_boxes) == len(images) and all(len(o) == self.bbox_num for o in object_boxes)
        gray = images.mean(1)
        integral = torch.nn.functional.pad(gray.cumsum(1).cumsum(2), (1, 0, 1, 0))
        scores = []
        for i, boxes in enumerate(crop_boxes):
            x1, y1, x2, y2 = boxes.round().long().unbind(1)
            total = integral[i, y2, x2] - integral[i, y1, x2] - integral[i, y2, x1] + integral[i, y1, x1]
            scores.append(total / ((x2 - x1) * (y2 - y1)))
        return torch.cat(scores)


def make_aug(ratio=4 / 3, **kwargs):
    kwargs.setdefault("model", Brightness())
    kwargs.setdefault("proposer", "image")
    return AestheticCrop(ratio, **kwargs)


def corner_images(batch=4, height=64, width=96, device="cpu", seed=0):
    """Dim noisy images, each with a bright square in a different corner."""
    g = torch.Generator().manual_seed(seed)
    x = 0.2 * torch.rand(batch, 3, height, width, generator=g)
    s = 20
    corners = [(slice(0, s), slice(0, s)), (slice(-s, None), slice(-s, None)),
               (slice(0, s), slice(-s, None)), (slice(-s, None), slice(0, s))]
    for i in range(batch):
        ys, xs = corners[i % 4]
        x[i, :, ys, xs] = 1.0
    return x.to(device)


def crop_of(params, i):
    """(x0, y0, w, h) of image i's crop, from Kornia's src corners."""
    src = params["src"][i]
    x0, y0 = int(src[0, 0]), int(src[0, 1])
    return x0, y0, int(src[2, 0]) - x0 + 1, int(src[2, 1]) - y0 + 1


# -- smoke and shapes ---------------------------------------------------------------------------------
def test_smoke(device):
    aug = make_aug(size=(48, 64))
    x = corner_images(device=device)
    out = aug(x)
    assert out.shape == (4, 3, 48, 64) and out.device == x.device and out.dtype == x.dtype
    params = aug._params
    keys = ("src", "dst", "batch_prob", "forward_input_shape", "input_size", "output_size", "crop_box", "crop_score")
    assert set(keys) <= set(params)
    assert params["src"].shape == params["dst"].shape == (4, 4, 2)
    assert aug.transform_matrix.shape == (4, 3, 3) and aug.transform_matrix.device == x.device
    text = repr(aug)
    assert text.startswith("AestheticCrop(") and "ratio=1.333" in text and "size=(48, 64)" in text


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape", [(3, 64, 96), (1, 3, 64, 96), (2, 3, 80, 80), (3, 3, 96, 64)])
def test_output_shapes(device, shape, keepdim):
    x = torch.rand(shape, device=device)
    out = make_aug(size=(30, 40), keepdim=keepdim)(x)
    expected = (*shape[:-2], 30, 40) if keepdim else ((1,) if len(shape) == 3 else shape[:1]) + (3, 30, 40)
    assert out.shape == expected


def test_size_none_keeps_crop_size(device):
    x = corner_images(batch=1, device=device)
    aug = make_aug()
    out = aug(x)
    x0, y0, w, h = crop_of(aug._params, 0)
    assert out.shape == (1, 3, h, w) and (w, h) == (60, 45)
    torch.testing.assert_close(out, x[..., y0 : y0 + h, x0 : x0 + w])  # an integer translation: exact


def test_int_size_is_square(device):
    assert make_aug(1.0, size=24)(torch.rand(1, 3, 40, 50, device=device)).shape == (1, 3, 24, 24)


def test_empty_batch(device):
    out = make_aug(size=(30, 40))(torch.rand(0, 3, 64, 96, device=device))
    assert out.shape == (0, 3, 30, 40)
    assert make_aug()(torch.rand(0, 3, 64, 96, device=device)).shape == (0, 3, 64, 85)


# -- p --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [None, (48, 64)])
def test_p0_is_identity(device, size):
    scorer = Brightness()
    aug = make_aug(size=size, model=scorer, p=0.0)
    x = corner_images(device=device)
    out = aug(x)
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    torch.testing.assert_close(aug.transform_matrix, torch.eye(3, device=device).expand(4, 3, 3))
    assert scorer.calls == 0  # a skipped batch is not scored
    # The params say what the output is: the whole image, at its own size, whatever ``size`` asks.
    h, w = x.shape[-2:]
    assert aug._params["output_size"].tolist() == [[h, w]] * len(x)
    assert aug._params["dst"][:, 2].tolist() == [[w - 1, h - 1]] * len(x)  # corners: pixel centres


def test_p1_crops(device):
    x = corner_images(device=device)
    aug = make_aug(size=(45, 60))
    out = aug(x)
    for i in range(len(x)):
        x0, y0, w, h = crop_of(aug._params, i)
        assert (w, h) == (60, 45)
        torch.testing.assert_close(out[i], x[i, :, y0 : y0 + h, x0 : x0 + w])
    # Content-aware: each image's crop holds its bright corner.
    assert crop_of(aug._params, 0)[:2] == (0, 0)
    assert crop_of(aug._params, 1)[:2] == (96 - 60, 64 - 45)


def test_p_half_gates_the_whole_batch(device):
    aug = make_aug(size=(45, 60), p=0.5)
    x = corner_images(device=device)
    torch.manual_seed(0)
    shapes = {tuple(aug(x).shape) for _ in range(12)}
    assert shapes == {(4, 3, 45, 60), (4, 3, 64, 96)}


# -- batch -----------------------------------------------------------------------------------------------
def test_batch_matches_single_images(device):
    x = corner_images(device=device)
    aug = make_aug(size=(45, 60))
    batched = aug(x)
    src = aug._params["src"].clone()
    for i in range(len(x)):
        single = aug(x[i : i + 1])
        torch.testing.assert_close(aug._params["src"][0], src[i])
        torch.testing.assert_close(single[0], batched[i])


def test_same_on_batch(device):
    x = corner_images(device=device)
    x[:, :, :20, :20] = 1.0  # every image has a bright top-left corner
    aug = make_aug(size=(45, 60), same_on_batch=True)
    aug(x)
    src = aug._params["src"]
    assert (src == src[:1]).all() and crop_of(aug._params, 0)[:2] == (0, 0)
    # size=None works for a batch when the crops are shared.
    assert make_aug(same_on_batch=True)(x).shape[0] == 4


def test_size_none_with_different_crop_sizes_raises(device):
    def by_brightness(images, crop_boxes, object_boxes):
        # Bright images prefer large crops, dark ones small crops.
        sign = [1.0 if image.mean() > 0 else -1.0 for image in images]
        return torch.cat([s * (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for s, b in zip(sign, crop_boxes)])

    x = torch.stack([torch.full((3, 64, 96), 0.9), torch.full((3, 64, 96), 0.1)]).to(device)
    with pytest.raises(ValueError, match="differ in size"):
        make_aug(model=by_brightness, num_boxes=2)(x)
    assert make_aug(model=by_brightness, num_boxes=2)(x[:1]).shape == (1, 3, 64, 85)
    assert make_aug(model=by_brightness, num_boxes=2)(x[1:]).shape == (1, 3, 45, 60)


# -- geometry of the chosen crops ------------------------------------------------------------------
@pytest.mark.parametrize("ratio", ["16:9", 1.0, "3:4", 2.5, 0.4, "4:3"])
def test_crop_has_ratio_within_1px_and_lies_inside(device, ratio):
    r = s2c_ops.cropping.candidates.parse_ratio(ratio)
    for height, width in [(64, 96), (97, 61), (120, 120), (50, 211)]:
        x = torch.rand(3, 3, height, width, device=device)
        aug = make_aug(ratio, size=(32, round(32 * r)))
        params = aug.forward_parameters(x.shape)
        aug.choose_crops(x, params)
        for i in range(3):
            x0, y0, w, h = crop_of(params, i)
            assert 0 <= x0 and 0 <= y0 and x0 + w <= width and y0 + h <= height
            if r >= 1:
                assert abs(w - h * r) <= 1, (w, h, r)
            else:
                assert abs(h - w / r) <= 1, (w, h, r)
            # Within one pixel (and a half for the rounded side) of the box the model scored.
            box = params["crop_box"][i]
            edges = torch.tensor([x0, y0, x0 + w, y0 + h], dtype=torch.float32)
            assert (edges - box).abs().max() <= 2.0


def test_pixel_crops_rounding():
    # The largest 16:9 box of a 256x384 image: exact sizes stay exact.
    crop = pixel_crops(torch.tensor([[0.0, 20.0, 384.0, 236.0]]), 16 / 9, 256, 384)
    assert crop.tolist() == [[0, 20, 384, 216]]
    # A box whose rounded height would push the width past the image is shortened by one pixel.
    crop = pixel_crops(torch.tensor([[0.0, 0.0, 100.0, 100 / 1.7]]), 1.7, 100, 100)
    x0, y0, w, h = crop[0].tolist()
    assert w <= 100 and abs(w - h * 1.7) <= 0.5


# -- transformation, composition, inverse ---------------------------------------------------------
def test_matrix_maps_crop_corners_onto_output_corners(device):
    aug = make_aug(size=(30, 40))
    aug(corner_images(device=device))
    src = aug._params["src"].to(device)
    corners = torch.cat([src, torch.ones(*src.shape[:2], 1, device=device)], -1)
    mapped = (aug.transform_matrix @ corners.transpose(1, 2)).transpose(1, 2)[..., :2]
    torch.testing.assert_close(mapped, aug._params["dst"].to(device).expand_as(mapped))


def test_matches_kornia_random_resized_crop_with_same_params(device):
    x = corner_images(device=device)
    aug = make_aug(size=(30, 40))
    out = aug(x)
    rrc = K.RandomResizedCrop((30, 40), cropping_mode="resample")
    keys = ("src", "dst", "batch_prob", "forward_input_shape", "input_size", "output_size")
    params = {k: aug._params[k] for k in keys}
    expected = rrc(x, params=params)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(aug.transform_matrix, rrc.transform_matrix, atol=1e-5, rtol=1e-5)


def test_slice_mode_matches_resample(device):
    x = corner_images(device=device)
    resample = make_aug(size=(30, 40))(x)
    sliced = make_aug(size=(30, 40), cropping_mode="slice")(x)
    torch.testing.assert_close(sliced, resample, atol=1e-5, rtol=1e-5)


def test_composition_matrices_multiply(device):
    x = corner_images(device=device)
    crop, flip = make_aug(size=(45, 60)), K.RandomHorizontalFlip(p=1.0)
    seq = K.AugmentationSequential(crop, flip)
    out = seq(x)
    torch.testing.assert_close(seq.transform_matrix, flip.transform_matrix @ crop.transform_matrix)
    torch.testing.assert_close(out, torch.flip(make_aug(size=(45, 60))(x), dims=[-1]))


def test_inverse(device):
    x = corner_images(batch=1, device=device)
    aug = make_aug()
    out = aug(x)
    back = aug.inverse(out)
    x0, y0, w, h = crop_of(aug._params, 0)
    inside = torch.zeros_like(x, dtype=torch.bool)
    inside[..., y0 : y0 + h, x0 : x0 + w] = True
    assert back.shape == x.shape
    torch.testing.assert_close(back[inside], x[inside], atol=1e-5, rtol=1e-5)
    assert back[~inside].abs().max() < 1e-5  # zeros outside the crop (float rounding at its edge)
    # With a resize the round trip is close on a smooth image.
    smooth = torch.linspace(0, 1, 96, device=device).expand(1, 3, 64, 96).contiguous()
    aug = make_aug(size=(90, 120))
    back = aug.inverse(aug(smooth))
    x0, y0, w, h = crop_of(aug._params, 0)
    region = (..., slice(y0, y0 + h), slice(x0, x0 + w))
    torch.testing.assert_close(back[region], smooth[region], atol=1e-3, rtol=0)


def test_container_boxes_keypoints_masks_follow_and_inverse(device):
    x = corner_images(device=device)
    seq = K.AugmentationSequential(make_aug(size=(45, 60)), data_keys=["input", "bbox_xyxy", "keypoints", "mask"])
    # Around each image's bright square: its box, its centre, and its mask.
    boxes = torch.tensor([[[2.0, 2.0, 18.0, 18.0]], [[78.0, 46.0, 94.0, 62.0]], [[78.0, 2.0, 94.0, 18.0]],
                          [[2.0, 46.0, 18.0, 62.0]]], device=device)
    keypoints = ((boxes[..., :2] + boxes[..., 2:]) / 2).clone()
    masks = (x[:, :1] > 0.5).float()
    out, out_boxes, out_keypoints, out_masks = seq(x, boxes, keypoints, masks)
    crop = seq[0]
    assert out.shape == (4, 3, 45, 60) and out_masks.shape == (4, 1, 45, 60)
    for i in range(4):
        kx, ky = out_keypoints[i, 0].round().long().tolist()
        assert out[i, :, ky, kx].min() > 0.9  # the keypoint still sits on the bright square
        x0, y0, w, h = crop_of(crop._params, i)
        expected_mask = torch.nn.functional.interpolate(masks[i : i + 1, :, y0 : y0 + h, x0 : x0 + w], size=(45, 60))
        assert (out_masks[i] != expected_mask[0]).float().mean() < 0.05
    matrix = crop.transform_matrix
    points = torch.cat([keypoints, torch.ones_like(keypoints[..., :1])], -1)
    torch.testing.assert_close(out_keypoints, (matrix @ points.transpose(1, 2)).transpose(1, 2)[..., :2])
    back, back_boxes, back_keypoints, back_masks = seq.inverse(out, out_boxes, out_keypoints, out_masks)
    assert back.shape == x.shape and back_masks.shape == masks.shape
    torch.testing.assert_close(back_boxes, boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(back_keypoints, keypoints, atol=1e-3, rtol=0)


def test_replay_params_does_not_score_again(device):
    scorer = Brightness()
    aug = make_aug(size=(45, 60), model=scorer)
    x = corner_images(device=device)
    first = aug(x)
    assert scorer.calls == 1
    again = aug(x, params=aug._params)
    assert scorer.calls == 1
    torch.testing.assert_close(first, again, rtol=0, atol=0)


def test_gradient_flows_to_the_image(device):
    x = corner_images(device=device).requires_grad_(True)
    make_aug(size=(30, 40))(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# -- top_k and determinism ----------------------------------------------------------------------------
def top_candidates(x, ratio, k):
    aug = make_aug(ratio)
    boxes, scores = aug.cropper(x.device)._score_candidates(x, ratio)
    return boxes, torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def test_score_candidates_returns_its_own_boxes(device):
    x = corner_images(device=device)
    cropper = make_aug(4 / 3).cropper(x.device)
    boxes, _ = cropper._score_candidates(x, 4 / 3)
    expected = boxes.clone()
    boxes.zero_()  # a caller's edit must not reach the next call (the anchors are cached per device)
    again, _ = cropper._score_candidates(x, 4 / 3)
    assert torch.equal(again, expected)


def test_top_k_picks_among_the_k_best(device):
    x = corner_images(device=device)
    boxes, best = top_candidates(x, 4 / 3, 3)
    aug = make_aug(top_k=3, size=(45, 60))
    seen = set()
    torch.manual_seed(0)
    for _ in range(10):
        aug(x)
        chosen = aug._params["crop_box"].to(device)
        for i in range(len(x)):
            index = int(((boxes - chosen[i]).abs().sum(1)).argmin())
            assert index in best[i].tolist()
            seen.add((i, index))
    assert len(seen) > len(x)  # not always the best one


def test_top_k_determinism_under_seed(device):
    x = corner_images(device=device)
    aug = make_aug(top_k=4, temperature=0.05, size=(45, 60))
    draws = []
    for seed in (0, 1, 0):
        torch.manual_seed(seed)
        aug(x)
        draws.append(aug._params["src"].clone())
    assert torch.equal(draws[0], draws[2])
    assert "draw" in aug._params and aug._params["draw"].shape == (4,)


def test_top_k_draws_from_the_generator_given(device):
    x = corner_images(device=device)
    g = torch.Generator()
    aug = make_aug(top_k=4, size=(45, 60), generator=g)
    runs = []
    for seed in (5, 5, 6):
        g.manual_seed(seed)
        torch.manual_seed(seed + 100)  # the global generator plays no part
        aug(x)
        runs.append(aug._params["src"].clone())
    assert torch.equal(runs[0], runs[1])
    with pytest.raises(TypeError, match="generator"):
        make_aug(top_k=2, generator=0)


def test_tiny_temperature_takes_the_best(device):
    x = corner_images(device=device)
    best = make_aug(size=(45, 60))
    best(x)
    aug = make_aug(top_k=5, temperature=1e-6, size=(45, 60))
    torch.manual_seed(3)
    aug(x)
    torch.testing.assert_close(aug._params["src"], best._params["src"])


def test_top_k_same_on_batch_shares_the_draw(device):
    x = corner_images(device=device)
    aug = make_aug(top_k=3, same_on_batch=True, size=(45, 60))
    torch.manual_seed(0)
    aug(x)
    assert (aug._params["src"] == aug._params["src"][:1]).all()


# -- scorers --------------------------------------------------------------------------------------------
def test_plain_function_scorer_with_num_boxes(device):
    seen = {}

    def centred(images, crop_boxes, object_boxes):
        seen["boxes"] = len(object_boxes[0])
        seen["device"] = images.device
        h, w = images.shape[-2:]
        out = []
        for boxes in crop_boxes:
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            out.append(-(centre - centre.new_tensor([w / 2, h / 2])).norm(dim=1) + (boxes[:, 2] - boxes[:, 0]) / w)
        return torch.cat(out)

    x = torch.rand(2, 3, 64, 96, device=device)
    aug = AestheticCrop(1.0, size=(32, 32), model=centred, proposer="image", num_boxes=3)
    assert aug(x).shape == (2, 3, 32, 32)
    assert seen["boxes"] == 3 and seen["device"].type == torch.device(device).type
    assert crop_of(aug._params, 0) == (16, 0, 64, 64)  # the largest centred square


def test_s2cnet_model(device):
    torch.manual_seed(0)
    model = s2c_ops.S2CNet(s2c_ops.S2CNetConfig(bbox_num=2, align_size=3)).eval()
    aug = AestheticCrop("16:9", size=(36, 64), model=model, proposer="image")
    x = torch.rand(1, 3, 64, 96, device=device)
    out = aug(x)
    assert out.shape == (1, 3, 36, 64) and torch.isfinite(aug._params["crop_score"]).all()
    x0, y0, w, h = crop_of(aug._params, 0)
    assert abs(w - h * 16 / 9) <= 1
    # The model is used through a fused copy on the images' device; the model itself is untouched.
    assert next(model.parameters()).device.type == "cpu" and model not in list(aug.modules())
    assert not any(k.startswith("_model") for k in aug.state_dict())


def test_default_model_is_lazy():
    aug = AestheticCrop(1.5)  # no weights are read here
    assert aug._model is None


def test_default_model(device):
    assert (resources.files("s2c_ops") / "weights" / DEFAULT_WEIGHTS).is_file(), "the default model's weights are missing"
    x = corner_images(batch=2, height=96, width=128, device=device)
    aug = AestheticCrop("4:3", size=(48, 64))
    out = aug(x)
    assert out.shape == (2, 3, 48, 64) and torch.isfinite(aug._params["crop_score"]).all()
    for i in range(2):
        x0, y0, w, h = crop_of(aug._params, i)
        assert abs(w - h * 4 / 3) <= 1 and x0 + w <= 128 and y0 + h <= 96


# -- exceptions -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0, -1.0, float("inf"), float("nan"), "0:1", "a:b", True])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError):
        AestheticCrop(ratio)


@pytest.mark.parametrize("size", [(0, 5), (1, 5), (5,), (5, 5, 5), "55", 3.5, (2.0, 3), (True, 4), -3])
def test_bad_size(size):
    with pytest.raises(ValueError):
        AestheticCrop(1.0, size=size)


@pytest.mark.parametrize(
    "kwargs",
    [dict(top_k=0), dict(top_k=1.5), dict(temperature=0.0), dict(temperature=-1.0), dict(temperature=float("inf")),
     dict(p=1.5), dict(p=-0.1), dict(cropping_mode="warp"), dict(num_boxes=0)],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        AestheticCrop(1.0, **kwargs)


def test_bad_model_or_proposer():
    with pytest.raises(TypeError):
        AestheticCrop(1.0, model=3)
    with pytest.raises(TypeError):
        AestheticCrop(1.0, proposer=3)
    with pytest.raises(ValueError, match="unknown proposer"):
        AestheticCrop(1.0, proposer="nope")


def test_size_with_another_ratio_warns():
    with pytest.warns(UserWarning, match="stretched"):
        AestheticCrop(16 / 9, size=(100, 100))


@pytest.mark.parametrize(
    "shape, error, match",
    [((64, 96), ValueError, r"\(B, C, H, W\)"), ((1, 1, 64, 96), ValueError, "3 channels"),
     ((2, 4, 64, 96), ValueError, "3 channels"), ((1, 1, 3, 64, 96), ValueError, r"\(B, C, H, W\)"),
     ((96,), ValueError, r"\(B, C, H, W\)"), ((1, 3, 12, 200), ValueError, "too small")],
)
def test_bad_input(device, shape, error, match):
    with pytest.raises(error, match=match):
        make_aug(1.0)(torch.rand(shape, device=device))


def test_bad_input_type(device):
    with pytest.raises(TypeError, match="uint8"):
        make_aug()(torch.zeros(1, 3, 64, 96, dtype=torch.int16, device=device))
    with pytest.raises(TypeError):
        make_aug()([torch.rand(3, 64, 96)])


@pytest.mark.parametrize("cropping_mode", ["resample", "slice"])
def test_uint8_images_are_cropped_as_their_float_values_and_stay_uint8(device, cropping_mode):
    """API.md's photos: uint8 in 0..255 as well as float in [0, 1]; the output keeps the input's dtype."""
    images = (corner_images(device=device) * 255).round().to(torch.uint8)
    aug = make_aug(size=(48, 64), cropping_mode=cropping_mode)
    out = aug(images)
    params = aug._params
    expected = aug(images.float() / 255, params=params)
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 48, 64)
    assert torch.equal(out, (expected * 255).round().to(torch.uint8))
    assert torch.equal(aug._params["crop_box"], params["crop_box"])
    assert torch.equal(make_aug(size=(48, 64), cropping_mode=cropping_mode)(images.float() / 255).mul(255).round(),
                       out.float())  # the same crops chosen as from the float images
    back = aug.inverse(out, params=params)
    assert back.dtype == torch.uint8 and back.shape == images.shape


def test_min_side_is_the_candidates_minimum(device):
    """A photo too small for the augmentation is one too small for the candidates, and no smaller."""
    side = int(MIN_CROP_SIDE)
    with pytest.raises(ValueError):
        ratio_anchors(side - 1, 200, 1.0)
    with pytest.raises(ValueError, match="too small"):
        make_aug(1.0)(torch.rand(1, 3, side - 1, 200, device=device))
    assert len(ratio_anchors(side, 200, 1.0)) and make_aug(1.0)(torch.rand(1, 3, side, 200, device=device)).shape[0] == 1
    make_aug(1.0)(torch.rand(1, 3, 16, 40))  # exactly the minimum works
