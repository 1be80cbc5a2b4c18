"""The default model's blend (:mod:`s2c_ops.models.blend`): its setting (:class:`BlendSetting`, its text and
checks, the shipped one, another tried on the shipped model), S2CNet scores only the priors' shortlist of each
candidate set, and the decoding reads the rest from the shortlisted crops."""
import json
import random
import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import s2c_ops
from s2c_ops import S2CNetWithPriors
from s2c_ops.cropping.candidates import ratio_anchors
from s2c_ops.models.blend import SETTING_FIELDS, BlendConfig, BlendSetting, expected_iou

SHIPPED = Path(s2c_ops.__file__).parent / "weights" / "s2cnet_fcdb.safetensors"


def blend(**changes) -> S2CNetWithPriors:
    torch.manual_seed(0)
    model = S2CNetWithPriors(replace(BlendConfig(), **changes)).eval()
    return model


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(1, 3, 160, 256, generator=g)
    sets = [ratio_anchors(160, 256, 16 / 9), ratio_anchors(160, 256, 1.0)]
    xy = torch.rand(10, 2, generator=g) * torch.tensor([200.0, 110.0])
    objects = [torch.cat([xy, xy + 40], 1)]
    return images, sets, objects


def test_s2cnet_scores_the_shortlist_of_each_set_and_the_rest_are_decoded():
    images, sets, objects = inputs()
    assert all(len(s) > 12 for s in sets)
    crops = [torch.cat(sets)]
    groups = [[len(s) for s in sets]]
    full = blend(shortlist=None, temperature=None)
    short = blend(shortlist=12, temperature=None)
    short.load_state_dict(full.state_dict())
    seen = []
    score = short.s2cnet.score
    short.s2cnet.score = lambda f, c, o, size: seen.append(len(c)) or score(f, c, o, size)
    with torch.no_grad():
        every = full(images, crops, objects, groups=groups)
        raw = short(images, crops, objects, groups=groups)
        c = short.config
        prior = c.geometry_weight * short.fcdb_prior(images, crops, objects) + \
            c.gaicd_weight * short.gaicd_prior(images, crops, objects)
    assert seen == [24, 24]  # the photo and its mirror image, 12 of each set
    start = 0
    for size in groups[0]:
        mine = slice(start, start + size)
        kept = prior[mine].topk(12).indices + start
        assert torch.isfinite(raw[kept]).all() and torch.isinf(raw[mine]).sum() == size - 12
        torch.testing.assert_close(raw[kept], every[kept], rtol=1e-5, atol=1e-5)
        start += size
    decoded = blend(shortlist=12)
    decoded.load_state_dict(full.state_dict())
    with torch.no_grad():
        scores = decoded(images, crops, objects, groups=groups)
    rois = torch.cat([torch.zeros(len(crops[0]), 1), crops[0]], 1)
    torch.testing.assert_close(scores, expected_iou(rois, raw, 1.0, groups[0]))
    assert torch.isfinite(scores).all()


def test_without_prior_weight_every_candidate_is_scored():
    images, sets, objects = inputs(1)
    model = blend(geometry_weight=0.0, gaicd_weight=0.0, shortlist=4, temperature=None)
    with torch.no_grad():
        scores = model(images, [sets[0]], objects)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("shortlist", [0, -3, 2.5, True])
def test_bad_shortlist(shortlist):
    with pytest.raises(ValueError, match="shortlist"):
        BlendConfig(shortlist=shortlist)


def test_sets_of_one_aspect_ratio_decode_at_the_ratio_temperature():
    from s2c_ops.cropping.candidates import grid_anchors
    from s2c_ops.models.blend import one_aspect_ratio

    images, sets, objects = inputs(2)
    free = grid_anchors(160, 256)
    assert one_aspect_ratio(sets[0]) and one_aspect_ratio(sets[1]) and not one_aspect_ratio(free)
    crops = [torch.cat([sets[0], free])]
    groups = [[len(sets[0]), len(free)]]
    undecoded = blend(shortlist=None, temperature=None)
    two = blend(shortlist=None, temperature=1.0, ratio_temperature=2.0)
    two.load_state_dict(undecoded.state_dict())
    with torch.no_grad():
        raw = undecoded(images, crops, objects, groups=groups)
        scores = two(images, crops, objects, groups=groups)
    rois = torch.cat([torch.zeros(len(crops[0]), 1), crops[0]], 1)
    n = len(sets[0])
    torch.testing.assert_close(scores[:n], expected_iou(rois[:n], raw[:n], 2.0))
    torch.testing.assert_close(scores[n:], expected_iou(rois[n:], raw[n:], 1.0))
    assert not torch.allclose(scores[:n], expected_iou(rois[:n], raw[:n], 1.0))
    with pytest.raises(ValueError, match="ratio_temperature needs a temperature"):
        BlendConfig(temperature=None, ratio_temperature=2.0)
    with pytest.raises(ValueError, match="temperature must be None or > 0"):
        BlendConfig(temperature=0.0)


def test_images_with_faces_decode_at_no_more_than_the_face_temperature():
    from s2c_ops.cropping.candidates import grid_anchors

    images, sets, objects = inputs(3)
    images = images.expand(2, -1, -1, -1)
    free = grid_anchors(160, 256)
    crops = [torch.cat([sets[0], free])] * 2
    groups = [[len(sets[0]), len(free)]] * 2
    undecoded = blend(shortlist=None, temperature=None)
    model = blend(shortlist=None, temperature=0.7, ratio_temperature=2.0, face_temperature=1.0)
    model.load_state_dict(undecoded.state_dict())
    with torch.no_grad():
        raw = undecoded(images, crops, objects * 2, groups=groups).view(2, -1)
        scores = model(images, crops, objects * 2, groups=groups, faces=[False, True]).view(2, -1)
        unflagged = model(images, crops, objects * 2, groups=groups).view(2, -1)
    rois = torch.cat([torch.zeros(len(crops[0]), 1), crops[0]], 1)
    n = len(sets[0])
    # Without faces the ratio's set at 2.0, free form at 0.7; with faces at most 1.0: 1.0 and 0.7.
    for image, ratio_t in ((0, 2.0), (1, 1.0)):
        torch.testing.assert_close(scores[image, :n], expected_iou(rois[:n], raw[image, :n], ratio_t))
        torch.testing.assert_close(scores[image, n:], expected_iou(rois[n:], raw[image, n:], 0.7))
    torch.testing.assert_close(unflagged[1], scores[0])  # no flags: no faces
    with pytest.raises(ValueError, match="faces needs crop_boxes as a list and one entry per image"):
        model(images, crops, objects * 2, groups=groups, faces=[True])
    with pytest.raises(ValueError, match="face_temperature needs a temperature"):
        BlendConfig(temperature=None, face_temperature=1.0)
    with pytest.raises(ValueError, match="face_temperature must be None or > 0"):
        BlendConfig(face_temperature=-1.0)


def test_decoding_worked_out_by_hand():
    """Expected IoU with the best crop, on paper. Set 1, one aspect ratio (decoded at the ratio temperature
    2): A = (0, 0, 4, 4), B = (2, 0, 6, 4) (IoU with A 8/24 = 1/3), C = (8, 0, 12, 4) (meets neither); raw
    2 ln 2, 0, 0, so the best is A, B, C with 1/2, 1/4, 1/4 and A = 1/2 + 1/3 * 1/4 = 7/12, B = 1/3 * 1/2 +
    1/4 = 5/12, C = 1/4. Set 2, free form (temperature 1): D = (0, 0, 4, 2) inside E = (0, 0, 4, 4) (IoU
    1/2); raw ln 3, 0: 3/4, 1/4, so D = 3/4 + 1/2 * 1/4 = 7/8, E = 1/2 * 3/4 + 1/4 = 5/8. With faces in set 1
    and the face temperature 1: 4/6, 1/6, 1/6, so A = 2/3 + 1/18 = 13/18, B = 2/9 + 1/6 = 7/18, C = 1/6."""
    import math

    boxes = torch.tensor([[0.0, 0, 4, 4], [2, 0, 6, 4], [8, 0, 12, 4], [0, 0, 4, 2], [0, 0, 4, 4]], dtype=torch.float64)
    rois = torch.cat([torch.zeros(5, 1, dtype=torch.float64), boxes], 1)
    raw = torch.tensor([2 * math.log(2), 0, 0, math.log(3), 0], dtype=torch.float64)
    decoded = expected_iou(rois, raw, 1.0, [3, 2], ratio_temperature=2.0)
    torch.testing.assert_close(decoded, torch.tensor([7 / 12, 5 / 12, 1 / 4, 7 / 8, 5 / 8], dtype=torch.float64))
    assert decoded[1] > decoded[2]  # equal raw scores: the crop beside the likely best decodes higher
    with_faces = expected_iou(rois, raw, 1.0, [3, 2], ratio_temperature=2.0, face_temperature=1.0,
                              with_faces=[True, False])
    torch.testing.assert_close(with_faces, torch.tensor([13 / 18, 7 / 18, 1 / 6, 7 / 8, 5 / 8], dtype=torch.float64))


@pytest.mark.parametrize("text, setting, written", [
    ("1:0.25:0.7:2:1", BlendSetting(1.0, 0.25, 0.7, 2.0, 1.0, mirror=False), "1:0.25:0.7:2:1"),
    ("0.5:0:none", BlendSetting(0.5, 0.0, None), "0.5:0:none"),
    ("1:0.25:0.7:none:1:mirror", BlendSetting(1, 0.25, 0.7, None, 1, mirror=True), "1:0.25:0.7:none:1:mirror"),
    (" 1.0 : 0.250 :0.70:2.0:none:NoMirror", BlendSetting(1, 0.25, 0.7, 2), "1:0.25:0.7:2"),
    ("0:0:None:mirror", BlendSetting(0, 0, None, mirror=True), "0:0:none:mirror"),
    ("2e-3:1e3:1e-05", BlendSetting(0.002, 1000.0, 1e-05), "0.002:1000:1e-05"),
])
def test_setting_text(text, setting, written):
    """``G:P:T[:TR[:TF]][:mirror]``: parse reads it, str writes the shortest form, parse reads that back."""
    assert BlendSetting.parse(text) == setting
    assert str(setting) == written and BlendSetting.parse(written) == setting
    assert all(isinstance(getattr(setting, name), float) for name in ("geometry_weight", "gaicd_weight"))


def test_setting_text_round_trip_of_any_setting():
    draw = random.Random(0)
    for _ in range(500):
        t = draw.choice([None, draw.uniform(1e-3, 5)])
        tr, tf = (None if t is None else draw.choice([None, draw.expovariate(1.0) + 1e-9]) for _ in range(2))
        setting = BlendSetting(draw.choice([0.0, draw.random() * 3]), draw.random() / 7, t, tr, tf,
                               mirror=draw.random() < 0.5)
        assert BlendSetting.parse(str(setting)) == setting, str(setting)


@pytest.mark.parametrize("text, error", [
    ("0.5:0", "expected G:P:T[:TR[:TF]][:mirror] (e.g. 1:0.25:0.7:2:1)"),
    ("0.5:0:1:1:1:1", "expected G:P:T"),
    ("0.5:0:1:1:1:1:mirror", "expected G:P:T"),
    ("mirror", "expected G:P:T"),
    ("", "expected G:P:T"),
    ("a:0:1", "are numbers"),
    ("1_0:0:1", "are numbers"),
    ("1:0:1:mirror:mirror", "are numbers"),
    ("1:0:1:x", "are numbers"),
    ("-1:0:1", "geometry_weight must be a number >= 0, got -1.0"),
    ("1:nan:1", "gaicd_weight must be a number >= 0, got nan"),
    ("1:inf:1", "gaicd_weight must be a number >= 0"),
    ("0.5:0:-1", "temperature must be None or > 0, got -1.0"),
    ("0.5:0:1:0", "ratio_temperature must be None or > 0, got 0.0"),
    ("0.5:0:1:1:0", "face_temperature must be None or > 0, got 0.0"),
    ("0.5:0:none:1", "ratio_temperature needs a temperature"),
    ("0.5:0:none:none:1", "face_temperature needs a temperature"),
])
def test_setting_text_errors(text, error):
    with pytest.raises(ValueError, match=f"^{re.escape(repr(text))} is not a blend setting: .*{re.escape(error)}"):
        BlendSetting.parse(text)


def test_setting_checks():
    for fields, error in (({"geometry_weight": True}, "geometry_weight must be a number"),
                          ({"gaicd_weight": "0.25"}, "gaicd_weight must be a number"),
                          ({"temperature": float("inf")}, "temperature must be None or > 0"),
                          ({"mirror": 1}, "mirror must be True or False")):
        with pytest.raises(ValueError, match=error):
            BlendSetting(**{"geometry_weight": 1, "gaicd_weight": 0.25, "temperature": 0.7, **fields})
    setting = BlendSetting(1, 0, 1)
    with pytest.raises(AttributeError):
        setting.temperature = 2.0  # frozen: a setting is a value (grid keys, configurations)
    assert {setting: 1}[BlendSetting(1.0, 0.0, 1.0, None, None, False)] == 1


def test_config_holds_a_setting():
    """BlendConfig keeps the setting's fields under their own names (the weights files' metadata), with the
    setting's checks; ``with_setting`` changes those alone."""
    setting = BlendSetting.parse("0.5:0:1.4:2:0.8:mirror")
    config = replace(BlendConfig(), shortlist=12).with_setting(setting)
    assert config.setting == setting and config.shortlist == 12 and config.s2cnet == BlendConfig().s2cnet
    assert {name: getattr(config, name) for name in SETTING_FIELDS} == asdict(setting)
    with pytest.raises(ValueError, match="gaicd_weight must be a number >= 0"):
        BlendConfig(gaicd_weight=-0.5)
    with pytest.raises(TypeError, match="BlendSetting"):
        BlendConfig().with_setting("0.5:0:1")


def test_the_shipped_weights_hold_the_shipped_setting_and_another_can_be_tried(tmp_path):
    """The shipped file's metadata is read as it was written (no key renamed); its setting is
    1:0.25:0.7:2:1; ``with_setting`` makes a copy that blends otherwise, saved and loaded with its setting."""
    with safe_open(str(SHIPPED), "pt") as f:
        stored = json.loads(f.metadata()["config"])
    model = S2CNetWithPriors.load(SHIPPED)
    assert model.setting == model.config.setting == BlendSetting.parse("1:0.25:0.7:2:1")
    assert {name: stored[name] for name in SETTING_FIELDS} == asdict(model.setting)
    assert asdict(model.config) == stored
    same, other = model.with_setting(model.setting), model.with_setting("0.5:0:1.4:mirror")
    assert other.setting == BlendSetting(0.5, 0.0, 1.4, mirror=True) and model.setting == same.setting
    assert other.config.shortlist == model.config.shortlist and other.s2cnet is not model.s2cnet
    images, sets, objects = inputs(4)
    with torch.no_grad():
        scores = [m(images, [torch.cat(sets)], objects, groups=[[len(s) for s in sets]]) for m in (model, same, other)]
    torch.testing.assert_close(scores[1], scores[0], rtol=0, atol=0)
    assert not torch.allclose(scores[2], scores[0])
    other.save(tmp_path / "other.safetensors")
    with safe_open(str(tmp_path / "other.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]).keys() == stored.keys()
    assert S2CNetWithPriors.load(tmp_path / "other.safetensors").setting == other.setting
