"""S2CNet: the official numbers, batching, checkpoints, backbones, pre-processing, Cropper, bad input."""
import copy

import pytest
import torch
from PIL import Image

import s2c_ops
from conftest import REPO, golden_path
from s2c_ops.models import backbones
from s2c_ops.models.weights import CheckpointError
from s2c_ops.cropping.candidates import ratio_anchors
from s2c_ops.cropping.cropper import Cropper
from s2c_ops.models.s2cnet import S2CNet
from s2c_ops.cropping.proposals import GivenBoxes
from s2c_ops.cropping.transforms import OfficialPreprocess, Resize

GOLDEN = ["ssc_GAICv1_256x384.pt", "ssc_GAICv2_320x256.pt"]
PHOTOS = REPO / "s2c_ops" / "demo_photos"


def load_golden(name):
    g = torch.load(golden_path(name), weights_only=True)
    g["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in g["state_dict"].items()}
    return g


@pytest.fixture(scope="module", params=GOLDEN)
def golden(request):
    g = load_golden(request.param)
    return g, S2CNet.from_official(g["state_dict"], g["config"])


def random_boxes(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.45, h * 0.45]) + 8
    return torch.cat([xy, xy + wh], 1)


# -- the official numbers -------------------------------------------------------------------------
def test_golden_scores(golden, device):
    """Within 1e-4 of the official scores in float32 (on CUDA with TF32 off: cuDNN's default TF32
    convolutions move scores by ~2e-4 on an H200)."""
    g, model = golden
    model = copy.deepcopy(model).to(device)
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        scores = model(g["image"].to(device), g["crop_boxes"].to(device), g["det_boxes"].to(device)).cpu()
    torch.testing.assert_close(scores, g["scores"], rtol=0, atol=1e-4)
    assert scores.argmax() == g["scores"].argmax()


def test_memory_formats_agree(golden):
    """The backbone in NCHW (use_memory_format) scores as the default channels-last one."""
    g, model = golden
    nchw = copy.deepcopy(model).use_memory_format(torch.contiguous_format)
    assert all(p.is_contiguous() for p in nchw.backbone.parameters())
    with torch.no_grad():
        args = g["image"], g["crop_boxes"], g["det_boxes"]
        torch.testing.assert_close(nchw(*args), model(*args), rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_scoring_captures_in_cuda_graph(golden):
    """Once the inputs are checked, features + score run inside a CUDA graph (no host sync or copy),
    and replays give the eager scores, also for new pixels written into the captured buffer."""
    g, model = golden
    model = copy.deepcopy(model).cuda().fused()
    image, crops, dets = g["image"].cuda(), g["crop_boxes"].cuda(), g["det_boxes"].cuda()
    rois_c, rois_o = model.check_inputs(image, crops, dets)
    static = image.clone()
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            model.score(model.features(static), rois_c, rois_o, static.shape[-2:])
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model.score(model.features(static), rois_c, rois_o, static.shape[-2:])
        for pixels in (image, image.flip(-1)):
            static.copy_(pixels)
            graph.replay()
            torch.testing.assert_close(out, model(pixels, crops, dets), rtol=0, atol=1e-5)
        torch.cuda.synchronize()
        static.copy_(image)
        graph.replay()
        torch.testing.assert_close(out.cpu(), g["scores"], rtol=0, atol=1e-4)


def test_golden_crop_boxes_are_grid_anchors():
    g = load_golden(GOLDEN[0])
    h, w = g["image"].shape[-2:]
    assert torch.equal(s2c_ops.cropping.candidates.grid_anchors(h, w), g["crop_boxes"][:, 1:])


def test_batch_equals_single_images(golden):
    """Two images in one call (one flipped), crops shuffled and given as a list: same scores as one
    image per call."""
    g, model = golden
    images = torch.cat([g["image"], g["image"].flip(-1)])
    w = images.shape[-1]
    crops = g["crop_boxes"][:, 1:]
    flipped = torch.stack([w - crops[:, 2], crops[:, 1], w - crops[:, 0], crops[:, 3]], 1)
    dets = g["det_boxes"][:, 1:]
    dets_flipped = torch.stack([w - dets[:, 2], dets[:, 1], w - dets[:, 0], dets[:, 3]], 1)
    with torch.no_grad():
        single = [model(images[i : i + 1], [c], [d]) for i, (c, d) in enumerate([(crops, dets), (flipped, dets_flipped)])]
        batched = model(images, [crops, flipped], [dets, dets_flipped])
        rois = s2c_ops.boxes_to_rois([crops, flipped])
        perm = torch.randperm(len(rois), generator=torch.Generator().manual_seed(0))
        objects = s2c_ops.boxes_to_rois([dets, dets_flipped])
        d = len(dets)  # images' object boxes swapped (their order within an image matters to GAICv2)
        shuffled = model(images, rois[perm], torch.cat([objects[d:], objects[:d]]))
    torch.testing.assert_close(batched, torch.cat(single), rtol=0, atol=1e-5)
    torch.testing.assert_close(shuffled, batched[perm], rtol=0, atol=1e-5)


def test_trains():
    model = S2CNet("GAICv1")
    images = torch.randn(2, 3, 64, 96)
    crops = [random_boxes(5, 64, 96, s) for s in (1, 2)]
    objects = [random_boxes(10, 64, 96, s) for s in (3, 4)]
    loss = model(images, crops, objects).square().mean()
    loss.backward()
    for name in ("backbone.body.conv_stem.weight", "reduce.weight", "transformer.gcn_proj.weight", "head.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


# -- checkpoints ----------------------------------------------------------------------------------
def test_from_official_path_and_wrappers(tmp_path):
    g = load_golden(GOLDEN[0])
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {"module." + k: v.half() for k, v in g["state_dict"].items()}}, path)
    model = S2CNet.from_official(path, "GAICv1")
    with torch.no_grad():
        scores = model(g["image"], g["crop_boxes"], g["det_boxes"])
    torch.testing.assert_close(scores, g["scores"], rtol=0, atol=1e-4)


def test_from_official_mismatch_names_keys():
    g = load_golden(GOLDEN[1])
    with pytest.raises(CheckpointError, match="node_embed.0.weight"):
        S2CNet.from_official(g["state_dict"], "GAICv1")
    broken = dict(g["state_dict"])
    broken["GraphTransformer.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="GraphTransformer.extra.weight"):
        S2CNet.from_official(broken, "GAICv2")
    del broken["GraphTransformer.extra.weight"]
    del broken["FC_layers.3.bias"]
    with pytest.raises(CheckpointError, match="missing: head.out.bias"):
        S2CNet.from_official(broken, "GAICv2")


def test_from_official_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match="not a checkpoint that loads with weights_only=True"):
        S2CNet.from_official(path, "GAICv1")


def test_save_load_roundtrip(tmp_path, golden):
    g, model = golden
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = S2CNet.load(path)
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(g["image"], g["crop_boxes"], g["det_boxes"]), g["scores"], rtol=0, atol=1e-4)


def test_fused_inference_copy(golden, tmp_path):
    g, model = golden
    fused = model.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.backbone.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())  # original untouched
    with torch.no_grad():
        torch.testing.assert_close(fused(g["image"], g["crop_boxes"], g["det_boxes"]), g["scores"], rtol=0, atol=1e-4)
    with pytest.raises(RuntimeError, match="inference copy"):
        fused.train()
    with pytest.raises(RuntimeError, match="inference copy"):
        fused.save(tmp_path / "x.safetensors")


@pytest.mark.parametrize("name", ["efficientnet_b1", "resnet50"])
def test_fold_batchnorm_other_backbones(name):
    model = S2CNet(s2c_ops.S2CNetConfig(backbone=name, bbox_num=3, align_size=5)).eval()
    for m in model.backbone.modules():  # non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model.features(x)
        fused = model.fused()
        torch.testing.assert_close(fused.features(x), expected, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.backbone.modules())


def test_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not an s2cnet weights file"):
        S2CNet.load(path)
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a safetensors weights file"):
        S2CNet.load(tmp_path / "garbage.safetensors")
    # a prior's file is a weights file, but not an S2CNet's: models.load tells them apart
    from s2c_ops.models import load
    from s2c_ops.models.prior import GeometryPrior
    from s2c_ops.models.weights import describe

    GeometryPrior().save(tmp_path / "prior.safetensors")
    with pytest.raises(CheckpointError, match="holds a geometry prior, not a S2CNet"):
        S2CNet.load(tmp_path / "prior.safetensors")
    model = load(tmp_path / "prior.safetensors")
    assert isinstance(model, GeometryPrior) and describe(model) == "geometry prior"


def test_save_float16(tmp_path, golden):
    g, model = golden
    model.save(tmp_path / "half.safetensors", dtype=torch.float16)
    model.save(tmp_path / "full.safetensors")
    half = (tmp_path / "half.safetensors").stat().st_size
    assert half < 0.55 * (tmp_path / "full.safetensors").stat().st_size
    loaded = S2CNet.load(tmp_path / "half.safetensors")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        expected = a.half().to(a.dtype) if a.is_floating_point() else a
        assert torch.equal(b, expected), name


# -- backbones and configs ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["efficientnet_b1", "resnet50"])
def test_other_backbones(name):
    model = S2CNet(s2c_ops.S2CNetConfig(backbone=name, bbox_num=3, align_size=5)).eval()
    assert model.reduce.in_channels == sum(model.backbone.channels)
    with torch.no_grad():
        scores = model(torch.randn(1, 3, 64, 96), [random_boxes(4, 64, 96)], [random_boxes(3, 64, 96, 1)])
    assert scores.shape == (4,) and torch.isfinite(scores).all()


def test_register_backbone():
    import timm

    backbones.register_backbone("tiny_test", lambda pretrained: timm.create_model(
        "mobilenetv3_small_050", features_only=True, out_indices=(2, 3, 4), pretrained=False), overwrite=True)
    model = S2CNet(s2c_ops.S2CNetConfig(backbone="tiny_test", bbox_num=2, align_size=3)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64), [random_boxes(2, 64, 64)], [random_boxes(2, 64, 64)]).shape == (2,)
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_backbone("tiny_test", timm_name="mobilenetv2_100")
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        S2CNet(s2c_ops.S2CNetConfig(backbone="nope"))


def test_configs():
    assert S2CNet("GAICv2").config.bbox_num == 5
    with pytest.raises(ValueError, match="unknown config"):
        S2CNet("GAICv3")
    with pytest.raises(ValueError, match="align_size"):
        s2c_ops.S2CNetConfig(align_size=0)


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model():
    return S2CNet(s2c_ops.S2CNetConfig(bbox_num=2, align_size=3)).eval()


@pytest.mark.parametrize(
    "images, crops, objects, error, match",
    [
        (torch.randn(3, 64, 64), None, None, ValueError, r"\(B, 3, H, W\)"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), None, None, TypeError, "floating point"),
        (torch.randn(1, 3, 16, 64), None, None, ValueError, "at least 32x32"),
        (None, [torch.tensor([[10.0, 10, 5, 40]])], None, ValueError, "empty or inverted"),
        (None, [torch.tensor([[10.0, 10, 70, 40]])], None, ValueError, "outside the 64x64 image"),
        (None, [torch.zeros(0, 4)], None, ValueError, "crop_boxes is empty"),
        (None, None, [torch.tensor([[1.0, 1, 9, 9]])], ValueError, "exactly bbox_num=2"),
        (None, torch.tensor([[1.0, 1, 1, 9, 9]]), None, ValueError, r"batch indices must be whole numbers in \[0, 1\)"),
        (None, [torch.tensor([[1.0, float("nan"), 9, 9]])], None, ValueError, "NaN"),
        (None, [torch.tensor([[1.0, 1, 9, 9]]), torch.tensor([[1.0, 1, 9, 9]])], None, ValueError, "list of 2 box tensors for 1 images"),
    ],
)
def test_bad_input(small_model, images, crops, objects, error, match):
    images = torch.randn(1, 3, 64, 64) if images is None else images
    crops = [torch.tensor([[4.0, 4, 40, 40]])] if crops is None else crops
    objects = [torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 90, 50]])] if objects is None else objects
    with pytest.raises(error, match=match):
        small_model(images, crops, objects)


def test_object_boxes_are_clamped(small_model):
    images = torch.randn(1, 3, 64, 64)
    crops = [torch.tensor([[4.0, 4, 40, 40]])]
    with torch.no_grad():
        a = small_model(images, crops, [torch.tensor([[-5.0, -5, 10, 10], [20.0, 20, 90, 70]])])
        b = small_model(images, crops, [torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 64, 64]])])
    torch.testing.assert_close(a, b)


# -- pre-processing and the Cropper ---------------------------------------------------------------
@pytest.mark.parametrize("size, expected", [((683, 1024), (256, 384)), ((1024, 768), (352, 256)), ((300, 451), (256, 384)), ((20, 20), (256, 256))])
def test_official_sizes(size, expected):
    assert OfficialPreprocess().output_size(*size) == expected


def test_preprocess_values_and_box_mapping():
    image = torch.full((3, 40, 60), 128, dtype=torch.uint8)
    x, geometry = OfficialPreprocess()(image)
    assert x.shape == (3, 256, 384) and geometry == Resize((40, 60), (256, 384))
    expected = (128 / 256 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[:, 10, 10], expected)
    boxes = torch.tensor([[1.3, 2.2, 30.1, 20.9]])
    model_boxes = geometry.boxes_to_model(boxes)
    torch.testing.assert_close(geometry.boxes_to_original(model_boxes), boxes)
    snapped = geometry.boxes_to_model(boxes, snap=True)
    assert torch.equal(snapped, torch.cat([model_boxes[:, :2].floor(), model_boxes[:, 2:].ceil()], 1))


def test_cropper_on_photos(small_model):
    photos = [Image.open(p) for p in sorted(PHOTOS.glob("*.*")) if p.suffix in (".png", ".jpg")]
    assert len(photos) >= 4
    cropper = Cropper(small_model, batch_size=2)
    results = cropper.crop_ratios(photos, ["16:9", "1:1", 0.75], top_k=3)
    for photo, per_ratio in zip(photos, results):
        w, h = photo.size
        for ratio, r in zip([16 / 9, 1.0, 0.75], per_ratio):
            assert r.ratio == ratio and r.boxes.shape == (3, 4) and r.scores.shape == (3,)
            assert bool((r.scores[:-1] >= r.scores[1:]).all())
            bw, bh = r.boxes[:, 2] - r.boxes[:, 0], r.boxes[:, 3] - r.boxes[:, 1]
            assert bool(((bw - ratio * bh).abs() <= max(1.0, ratio)).all())
            assert bool((r.boxes[:, :2] >= 0).all() and (r.boxes[:, 2] <= w).all() and (r.boxes[:, 3] <= h).all())
    # One image per call gives the same choice (grouping and batching do not change scores).
    single = cropper.crop(photos[1], ratio="16:9", top_k=3)[0]
    torch.testing.assert_close(single.scores, results[1][0].scores, rtol=0, atol=1e-5)


def test_cropper_given_boxes_and_errors(small_model):
    image = torch.rand(3, 120, 200, generator=torch.Generator().manual_seed(0))
    cropper = Cropper(small_model, GivenBoxes([torch.tensor([[10.0, 10, 50, 50], [60.0, 20, 150, 100]])]))
    (result,) = cropper.crop([image], ratio=1.0, top_k=500)
    candidates = ratio_anchors(120, 200, 1.0)
    # top_k past the candidates gives them all, best first, each once, with the model's own scores
    assert len(result.boxes) == len(candidates)
    assert bool((result.scores[:-1] >= result.scores[1:]).all())
    assert sorted(map(tuple, result.boxes.tolist())) == sorted(map(tuple, candidates.tolist()))
    resized, geometry, _ = cropper._prepare(image)
    direct = cropper._score_resized(resized[None], geometry, [candidates])[0]
    # As close as batching allows (the convolutions' rounding may differ by call, see the test above).
    torch.testing.assert_close(result.scores, direct.sort(descending=True).values, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="top_k"):
        cropper.crop([image], ratio=1.0, top_k=0)
    with pytest.raises(ValueError, match="ratio"):
        cropper.crop([image], ratio="0:1")
