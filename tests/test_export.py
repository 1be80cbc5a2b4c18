"""The exportable scorer (s2c_ops/models/exportable.py), ``s2c export`` and the exported default model's
parity with the Cropper on the demo photos (the FCDB-wide parity: benchmarks/bench_export.py)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import s2c_ops
from s2c_ops.cropping.cropper import Cropper
from s2c_ops.cropping.images import load_image
from s2c_ops.export import best_index, caller_inputs, export_program
from s2c_ops.models import S2CNet, create_model
from s2c_ops.models.exportable import INPUT_NAMES, SetScorer

DEMO = Path(s2c_ops.__file__).parent / "demo_photos"
RATIOS = (1.0, 16 / 9, 3 / 4)


def _models():
    torch.manual_seed(0)
    return {"s2cnet_gaicv1": S2CNet("GAICv1").eval(), "s2cnet_gaicv2": S2CNet("GAICv2").eval(),
            "prior": create_model("prior"), "default": create_model("default")}


MODELS = _models()


def _eager(model, images, crops, objects, faces):
    options = {"faces": faces.tolist()} if getattr(model, "uses_faces", False) else {}
    return model(images, list(crops), list(objects), **options).reshape(crops.shape[:2])


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [dict(), dict(batch=3, candidates=20, height=320, width=256, seed=1),
                                  dict(batch=2, candidates=100, height=192, width=1024, seed=4)])  # a panorama
def test_set_scorer_equals_eager(name, size):
    model = MODELS[name]
    scorer = SetScorer(model)
    inputs = scorer.example_inputs(**size)
    with torch.no_grad():
        torch.testing.assert_close(scorer.score(*inputs), _eager(model, *inputs), rtol=0, atol=1e-5)


def test_set_scorer_decodes_one_ratio_sets_and_faces_as_eager():
    """Sets of one aspect ratio (the ratio temperature) and images with faces (the face temperature)."""
    model = MODELS["default"]
    assert model.config.ratio_temperature is not None and model.config.face_temperature is not None
    images, _, objects, _ = SetScorer(model).example_inputs(batch=2)
    from s2c_ops.cropping.candidates import ratio_anchors

    crops = ratio_anchors(256, 384, 4 / 3)[None].expand(2, -1, -1).contiguous()
    for faces in (torch.tensor([True, False]), torch.tensor([False, False])):
        with torch.no_grad():
            torch.testing.assert_close(SetScorer(model).score(images, crops, objects, faces),
                                       _eager(model, images, crops, objects, faces), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["s2cnet_gaicv2", "prior", "default"])
def test_torch_export_is_dynamic(name):
    scorer = SetScorer(MODELS[name])
    program = export_program(scorer)
    for size in (dict(batch=1, candidates=5, height=256, width=256, seed=2),
                 dict(batch=3, candidates=90, height=384, width=224, seed=3),
                 dict(batch=2, candidates=100, height=192, width=1024, seed=4)):  # the priors do not judge
        inputs = scorer.example_inputs(**size)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(*inputs), scorer.score(*inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["prior", "default"])  # the default model runs S2CNet's whole forward
def test_compile_fullgraph_has_no_graph_break(name):
    scorer = SetScorer(MODELS[name])
    inputs = scorer.example_inputs()
    torch._dynamo.reset()
    # fullgraph=True raises at the first graph break.
    compiled = torch.compile(scorer, fullgraph=True, backend="eager", dynamic=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(*inputs), scorer(*inputs), rtol=0, atol=1e-5)


def test_state_dict_keys_and_shipped_weights_unchanged(tmp_path):
    model = S2CNet("GAICv1")
    keys = list(model.state_dict())
    assert "graph.app_theta.weight" in keys and not any(k.startswith("relations.") for k in keys)
    other = S2CNet("GAICv1")
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.relations.app_theta.weight, model.relations.app_theta.weight)
    assert any(k.startswith("s2cnet.graph.") for k in MODELS["default"].state_dict())
    model.save(tmp_path / "m.safetensors")
    assert torch.equal(S2CNet.load(tmp_path / "m.safetensors").relations.pos_phi.bias, model.relations.pos_phi.bias)


BAD = [
    (lambda i, c, o, f: (i[:, :2], c, o, f), "images must be a"),
    (lambda i, c, o, f: (i[..., :250], c, o, f), "multiples of 32"),
    (lambda i, c, o, f: (i, c[:, :, :3], o, f), "crops must be a"),
    (lambda i, c, o, f: (i, c[:, :0], o, f), "no candidate"),
    (lambda i, c, o, f: (i, c, o[:, :4], f), "objects must be a"),
    (lambda i, c, o, f: (i, c, o, f.float()), "faces must be"),
    (lambda i, c, o, f: (i, c + 1000, o, f), "outside"),
    (lambda i, c, o, f: (i, c.flip(-1), o, f), "inverted"),
    (lambda i, c, o, f: (i, c, o * float("nan"), f), "NaN"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_front_door_names_the_problem(change, message):
    scorer = SetScorer(MODELS["s2cnet_gaicv1"])
    with pytest.raises((ValueError, TypeError), match=message):
        scorer.score(*change(*scorer.example_inputs()))


def test_fused_copy_and_foreign_scorers_are_refused():
    with pytest.raises(TypeError, match="inference copy"):
        SetScorer(MODELS["s2cnet_gaicv1"].fused())
    with pytest.raises(TypeError, match="score_sets"):
        SetScorer(torch.nn.Linear(2, 2))


# -- s2c export and the exported default model in onnxruntime ---------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxscript", reason="s2c export --format onnx needs onnxscript (pip install onnxscript)")
    out = tmp_path_factory.mktemp("export")
    from s2c_ops.cli.main import main

    assert main(["export", "--out", str(out)]) == 0
    return out


def test_export_writes_onnx_and_description(exported, capsys):
    description = json.loads((exported / "scorer.json").read_text())
    assert description["files"] == {"onnx": "scorer.onnx"}
    assert list(description["inputs"]) == list(INPUT_NAMES)
    assert description["inputs"]["objects"]["shape"] == ["B", 10, 4]
    assert description["preprocess"]["normalise"]["divide_by"] == 256.0
    assert description["face_rule"]["settings"]["cut_penalty"] == 100.0
    assert description["model"].endswith("(default)")
    from s2c_ops.cli.main import main

    assert main(["export", "--out", str(exported)]) == 2  # files there, no --overwrite: a usage error
    assert "--overwrite" in capsys.readouterr().err


def test_export_refuses_a_file_as_out_and_an_unknown_device_before_loading(tmp_path, capsys, monkeypatch):
    from s2c_ops.cli import export as export_cli
    from s2c_ops.cli.main import main

    def never(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(export_cli, "load_model", never)
    (tmp_path / "afile").write_text("x")
    assert main(["export", "--out", str(tmp_path / "afile")]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "afile" / "new")]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "new"), "--format", "aoti", "--device", "nosuchdev"]) == 2
    assert "is not a device" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "new"), "--format", "aoti", "--device", "meta"]) == 2
    assert "--device meta: the meta device holds no values" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["export", "--out", str(tmp_path / "new"), "--format", "aoti", "--device", "cuda"]) == 2
        assert "--device cuda: CUDA is not available here" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    (tmp_path / "there" / "scorer.onnx").mkdir(parents=True)  # was found after a whole export
    assert main(["export", "--out", str(tmp_path / "there"), "--overwrite"]) == 2
    assert f"{tmp_path / 'there' / 'scorer.onnx'} is a folder" in capsys.readouterr().err


def test_exported_default_chooses_the_croppers_crop(exported):
    """The demo photos at three ratios: the same top-1 crop as Cropper, scores within 1e-3."""
    ort = pytest.importorskip("onnxruntime", reason="runs the exported model in onnxruntime")
    session = ort.InferenceSession(str(exported / "scorer.onnx"), providers=["CPUExecutionProvider"])
    cropper = Cropper(MODELS["default"])
    photos = sorted(p for p in DEMO.iterdir() if p.suffix in (".png", ".jpg"))
    assert len(photos) >= 4
    for path in photos:
        photo = load_image(path)
        for ratio in RATIOS:
            inputs = caller_inputs(cropper, photo, ratio)
            feeds = {name: getattr(inputs, name).numpy() for name in INPUT_NAMES}
            scores = torch.from_numpy(session.run(None, feeds)[0])
            with torch.no_grad():
                eager = cropper.model(inputs.images, list(inputs.crops), list(inputs.objects),
                                      groups=[[scores.shape[1]]], faces=inputs.faces.tolist())
            np.testing.assert_allclose(scores.reshape(-1).numpy(), eager.numpy(), rtol=0, atol=1e-3)
            (result,) = cropper.crop(photo, ratio)
            assert torch.equal(inputs.candidates[best_index(cropper, scores, inputs)], result.boxes[0]), (path.name, ratio)
