"""One model API: every scorer saves and loads alike and refuses what cannot round-trip; named models,
backbones and proposers by case-insensitive names; the Scorer abilities."""
import pytest
import torch
from conftest import golden_path

from s2c_ops import GeometryPrior, S2CNet, S2CNetWithPriors
from s2c_ops.cropping import proposals
from s2c_ops.models import backbones
from s2c_ops.models import create_model, list_models, load, register_model
from s2c_ops.models.registry import model_description
from s2c_ops.models.weights import CheckpointError
from s2c_ops.models.scorer import ABILITIES, ability, inference_copy

SCORERS = {
    "s2cnet": lambda: S2CNet("GAICv2"),
    "prior": GeometryPrior,
    "blend": S2CNetWithPriors,
}


@pytest.mark.parametrize("kind", sorted(SCORERS))
@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_every_scorer_saves_and_loads_alike(tmp_path, kind, dtype):
    model = SCORERS[kind]().eval()
    path = tmp_path / "m.safetensors"
    model.save(path, dtype=dtype)
    loaded = type(model).load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for (name, theirs), mine in zip(model.state_dict().items(), loaded.state_dict().values()):
        expected = theirs.to(dtype).to(theirs.dtype) if dtype is not None and theirs.is_floating_point() else theirs
        assert torch.equal(mine, expected), name


@pytest.mark.parametrize("kind", ["s2cnet", "blend"])
def test_inference_copies_refuse_to_save_and_train(tmp_path, kind):
    fused = inference_copy(SCORERS[kind]().eval())
    with pytest.raises(RuntimeError, match="inference copy"):
        fused.save(tmp_path / "fused.safetensors")
    with pytest.raises(RuntimeError, match="inference copy"):
        fused.train()
    assert not (tmp_path / "fused.safetensors").exists()


def test_save_refuses_a_dtype_that_cannot_round_trip(tmp_path):
    with pytest.raises(ValueError, match="floating-point"):
        GeometryPrior().save(tmp_path / "p.safetensors", dtype=torch.int8)


def test_named_models():
    assert list_models() == ["default", "prior", "s2cnet_gaicv1", "s2cnet_gaicv2"]
    assert isinstance(create_model("PRIOR"), GeometryPrior)
    with pytest.raises(ValueError, match="unknown model 'nope'; valid names: default, prior, s2cnet_gaicv1"):
        create_model("nope")

    @register_model(name="tiny_model_api", description="a tiny prior", overwrite=True)
    def tiny(pretrained=True, checkpoint_path=None, **kwargs):
        return GeometryPrior(**kwargs)

    assert "tiny_model_api" in list_models() and isinstance(create_model("TINY_model_api"), GeometryPrior)
    assert model_description("tiny_model_api") == "a tiny prior"
    assert model_description("default") == "S2CNet (FCDB) + geometry priors (default)"
    with pytest.raises(ValueError, match="already registered"):
        register_model(tiny, name="tiny_model_api")

    @register_model(overwrite=True)
    def tiny_by_its_name(pretrained=True, checkpoint_path=None):
        """The function's name and docstring name it."""
        return GeometryPrior()

    assert model_description("tiny_by_its_name") == "The function's name and docstring name it"


def test_create_model_pretrained_and_checkpoints(tmp_path):
    shipped, untrained = create_model("prior"), create_model("prior", pretrained=False, hidden=8)
    assert untrained.config.hidden == 8 and not untrained.training
    shipped.save(tmp_path / "prior.safetensors")
    again = create_model("prior", checkpoint_path=tmp_path / "prior.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(shipped.state_dict().values(), again.state_dict().values()))
    assert type(load(tmp_path / "prior.safetensors")) is GeometryPrior
    with pytest.raises(CheckpointError, match="not a S2CNetWithPriors"):
        create_model("default", checkpoint_path=tmp_path / "prior.safetensors")
    assert isinstance(create_model("default", pretrained=False), S2CNetWithPriors)
    from s2c_ops.models import BlendSetting

    other = create_model("default", setting="1:0.25:1:2:1")
    assert other.setting == BlendSetting.parse("1:0.25:1:2:1") != create_model("default").setting


def test_create_model_builds_the_official_configurations(tmp_path):
    with pytest.raises(ValueError, match="do not ship with the package"):
        create_model("s2cnet_gaicv1")
    assert create_model("s2cnet_gaicv2", pretrained=False).config.bbox_num == 5
    golden = torch.load(golden_path("ssc_GAICv1_256x384.pt"), weights_only=True)
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in golden["state_dict"].items()},
               tmp_path / "official.pth")
    model = create_model("s2cnet_gaicv1", checkpoint_path=tmp_path / "official.pth")
    scores = model(golden["image"], golden["crop_boxes"], golden["det_boxes"]).reshape(-1)
    assert torch.allclose(scores, golden["scores"], atol=1e-4)


def test_registries_share_one_name_rule_and_timms_verbs():
    """Names are case-insensitive in all three registries, each with list_*, create_* and register_*."""
    assert "mobilenetv2_100" in backbones.list_backbones()
    assert backbones.create_backbone("MobileNetV2_100").channels == (32, 96, 320)
    assert type(proposals.create_proposer(" Saliency ")).__name__ == "SaliencyProposer"
    backbones.register_backbone("tiny_api", lambda pretrained: backbones.create_backbone("mobilenetv2_100").body,
                                overwrite=True)
    assert "tiny_api" in backbones.list_backbones() and backbones.create_backbone("TINY_api").channels == (32, 96, 320)
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_backbone("TINY_API", timm_name="resnet50")
    proposals.register_proposer("tiny_api", lambda **kw: proposals.WholeImage(), overwrite=True)
    assert "tiny_api" in proposals.list_proposers()
    assert isinstance(proposals.create_proposer("Tiny_API"), proposals.WholeImage)
    with pytest.raises(ValueError, match="already registered"):
        proposals.register_proposer("tiny_api", proposals.WholeImage)


def test_registering_and_creating_refuse_what_would_fail_later():
    """A bare @register_proposer registered nothing and replaced the function; non-callables, an empty
    name, factories that give no model or proposer, and a prior's config with pretrained weights (ignored)
    were taken."""
    from s2c_ops.models import register_model
    from s2c_ops.models.registry import _MODELS

    with pytest.raises(TypeError, match="register_proposer takes the name first"):
        @proposals.register_proposer
        def mine(**kw):
            return proposals.WholeImage()
    with pytest.raises(TypeError, match="makes a proposer, got int"):
        proposals.register_proposer("five", 5)
    with pytest.raises(TypeError, match="makes a model, got int"):
        register_model(5, name="five")
    with pytest.raises(ValueError, match="a model needs a name"):
        register_model(lambda **kw: None, name="")
    register_model(lambda **kw: "not a model", name="api_text", overwrite=True)
    proposals.register_proposer("api_text", lambda **kw: "not a proposer", overwrite=True)
    try:
        with pytest.raises(TypeError, match="gave a str, not a torch.nn.Module"):
            create_model("api_text")
        with pytest.raises(TypeError, match="gave a str, not a proposer"):
            proposals.create_proposer("api_text")
    finally:
        _MODELS.remove("api_text")
        proposals.registry._REGISTRY.remove("api_text")
    with pytest.raises(TypeError, match="makes an untrained prior: pass pretrained=False"):
        create_model("prior", hidden=8)
    assert create_model("prior", pretrained=False, hidden=8).config.hidden == 8


def test_abilities():
    assert set(ABILITIES) == {"reads_pixels", "decodes_candidates", "uses_faces", "antialias"}
    prior, blend = GeometryPrior(), S2CNetWithPriors()
    assert not ability(prior, "reads_pixels") and ability(prior, "antialias")
    assert ability(blend, "decodes_candidates") and ability(blend, "uses_faces") and ability(blend, "antialias")
    assert not ability(prior, "uses_faces") and not ability(S2CNet("GAICv1"), "uses_faces")
    assert not ability(S2CNet("GAICv1"), "antialias")
    plain = lambda images, crops, objects: torch.zeros(len(crops))  # noqa: E731
    assert [ability(plain, a) for a in ABILITIES] == list(ABILITIES.values()) and inference_copy(plain) is plain


def test_the_default_model_pickles_for_torch_save():
    """torch.save pickles with protocol 2, which a torch.memory_format attribute failed ("cannot pickle
    'module' object"): an AestheticCrop that had loaded the default model could not be saved."""
    import io

    model = create_model("default")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    assert again.s2cnet.memory_format == torch.channels_last
    images = torch.rand(1, 3, 256, 320) * 255
    crops, objects = [torch.tensor([[0.0, 0, 200, 200], [10, 10, 300, 250]])], [torch.tensor([[0.0, 0, 320, 256]] * 10)]
    assert torch.equal(again(images, crops, objects), model(images, crops, objects))
