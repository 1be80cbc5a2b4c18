"""One model API: every scorer saves and loads alike and refuses what cannot round-trip; named models,
backbones and proposers by case-insensitive names; the Scorer abilities."""
import pytest
import torch

from s2c_ops import GeometryPrior, S2CNet, S2CNetWithPriors
from s2c_ops.cropping import proposals
from s2c_ops.models import backbones
from s2c_ops.models import create_model, list_models, register_model
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
    assert list_models() == ["fcdb", "prior"]
    assert isinstance(create_model("PRIOR"), GeometryPrior)
    with pytest.raises(ValueError, match="unknown model 'nope'; valid names: fcdb, prior"):
        create_model("nope")

    @register_model("Tiny", description="a tiny prior")
    def tiny():
        return GeometryPrior()

    from s2c_ops.models.default import _MODELS, model_description

    try:
        assert "tiny" in list_models() and isinstance(create_model("tiny"), GeometryPrior)
        assert model_description("TINY") == "a tiny prior" and model_description().endswith("(default)")
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny", tiny, description="again")
    finally:
        _MODELS.remove("tiny")


def test_registries_share_one_name_rule():
    """Names are case-insensitive in all three registries."""
    assert "MobileNetV2_100" in backbones._REGISTRY and backbones.Backbone("MobileNetV2_100").channels
    assert type(proposals.get_proposer(" Saliency ")).__name__ == "SaliencyProposer"
    backbones.register("Tiny", lambda pretrained: backbones.Backbone("mobilenetv2_100").body)
    try:
        with pytest.raises(ValueError, match="already registered"):
            backbones.register("TINY", timm_name="resnet50")
    finally:
        backbones.unregister("tiny")


def test_abilities():
    assert set(ABILITIES) == {"reads_pixels", "decodes_candidates", "uses_faces", "antialias"}
    prior, blend = GeometryPrior(), S2CNetWithPriors()
    assert not ability(prior, "reads_pixels") and ability(prior, "antialias")
    assert ability(blend, "decodes_candidates") and ability(blend, "uses_faces") and ability(blend, "antialias")
    assert not ability(prior, "uses_faces") and not ability(S2CNet("GAICv1"), "uses_faces")
    assert not ability(S2CNet("GAICv1"), "antialias")
    plain = lambda images, crops, objects: torch.zeros(len(crops))  # noqa: E731
    assert [ability(plain, a) for a in ABILITIES] == list(ABILITIES.values()) and inference_copy(plain) is plain
