"""`s2c train`: the GAIC recipe on one process, resume, ImageNet initialisation, and torchrun with 2 CPU ranks."""
import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from s2c_ops import S2CNet, S2CNetConfig, cli
from s2c_ops.models.official import load_imagenet_backbone
from s2c_ops.models.weights import CheckpointError
from synthetic import make_gaicd

IMAGENET = os.path.join(torch.hub.get_dir(), "checkpoints", "mobilenet_v2-b0353104.pth")


def read_log(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def one_thread():
    """Training runs compared weight by weight: one thread, so that float sums add up in one order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_run(run, straight):
    for mine, theirs in zip(S2CNet.load(run).state_dict().values(), S2CNet.load(straight).state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-3)
    assert [float(r["loss"]) for r in read_log(run)] == pytest.approx([float(r["loss"]) for r in read_log(straight)],
                                                                     rel=1e-4)


def test_train_resume_and_frozen_batchnorm(tmp_path, capsys, one_thread):
    data = tmp_path / "gaicd"
    make_gaicd(data, n_train=2, n_test=1, pixels=True, crops=12)
    run = tmp_path / "run"
    base = ["train", "--data", str(data), "--out", str(run), "--lr", "1e-3", "--backbone-weights", "none", "--device", "cpu"]
    assert cli.main(base + ["--epochs", "2"]) == 0
    first = S2CNet.load(run / "model.safetensors")
    assert [r["epoch"] for r in read_log(run)] == ["1", "2"]
    assert (run / "curves.png").stat().st_size > 0
    capsys.readouterr()
    assert cli.main(base + ["--epochs", "3", "--resume"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")] == ["3/3"]
    rows = read_log(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    last = S2CNet.load(run / "model.safetensors")
    # The resume ran epoch 3 alone, and it is the uninterrupted run's: same weights, same losses (a resume
    # with another data order or learning rate is not).
    straight = tmp_path / "straight"
    assert cli.main([a if a != str(run) else str(straight) for a in base] + ["--epochs", "3"]) == 0
    assert_same_run(run, straight)
    fresh = S2CNet("GAICv1")
    # Backbone BatchNorm frozen (statistics as initialised); the rest trains.
    torch.testing.assert_close(last.backbone.body.bn1.running_var, fresh.backbone.body.bn1.running_var)
    assert not torch.equal(last.head.weight, first.head.weight)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["last"]["epoch"] == 3
    # The run folder evaluates as it is.
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(data), "--split", "test", "--weights", str(run), "--device", "cpu",
                     "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["images"] == 1


@pytest.mark.skipif(not os.path.exists(IMAGENET), reason=f"{IMAGENET} is not here (make imagenet-weights puts it there)")
def test_imagenet_initialisation():
    model = S2CNet("GAICv1")
    load_imagenet_backbone(model)  # through torchvision's weights API and its hub cache (hash checked)
    tv = torch.load(IMAGENET, weights_only=True)
    assert torch.equal(model.backbone.body.conv_stem.weight, tv["features.0.0.weight"])
    assert torch.equal(model.backbone.body.blocks[6][0].conv_pwl.weight, tv["features.17.conv.2.weight"])


def test_imagenet_mismatch_is_clear():
    model = S2CNet(S2CNetConfig(backbone="resnet50"))
    import torchvision

    with pytest.raises(CheckpointError, match="backbone='mobilenetv2_100'"):
        load_imagenet_backbone(model, torchvision.models.mobilenet_v2(weights=None).state_dict())


def test_torchrun_two_cpu_ranks(tmp_path):
    """Two gloo ranks, each on its shard: the loss falls and both end with the same weights."""
    data = tmp_path / "gaicd"
    make_gaicd(data, n_train=4, n_test=1, pixels=True, crops=12)
    run = tmp_path / "run"
    # PYTHONFAULTHANDLER: a rank that aborts prints where each of its threads was. A rank used to abort at exit
    # now and then ("terminate called without an active exception"), which distributed.lending ended.
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONFAULTHANDLER="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "s2c_ops.cli", "train", "--data", str(data), "--out", str(run), "--epochs", "5", "--lr", "1e-3",
           "--backbone-weights", "none", "--device", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert (run / "summary.json").exists(), done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"], summary["rank_digests"]
    losses = [float(r["loss"]) for r in read_log(run)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert done.returncode == 0, done.stderr[-3000:]


def test_fcdb_training_resume_and_finetune(tmp_path, capsys, one_thread):
    """s2c train on an FCDB folder: cached frozen stage, then fine-tuning on pixels; the loss falls, the run
    resumes from its state, and the weights are float16."""
    from s2c_ops.data.fcdb import read_fcdb
    from s2c_ops.models.weights import read_metadata
    from synthetic import make_fcdb

    data = tmp_path / "fcdb"
    make_fcdb(data, 6)
    run = tmp_path / "run"
    base = ["train", "--data", str(data), "--out", str(run), "--backbone-weights", "none", "--device", "cpu",
            "--eval-split", "train", "--proposer", "saliency", "--sample", "8", "--photos-per-step", "2",
            "--lr", "1e-3"]
    assert cli.main(base + ["--epochs", "3"]) == 0
    rows = read_log(run)
    assert [r["stage"] for r in rows] == ["frozen"] * 3
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert 0 < float(rows[-1]["ratio_iou"]) <= 1 and 0 < float(rows[-1]["free_iou"]) <= 1
    assert (run / "features.rank0.pt").exists() and (run / "curves.png").stat().st_size > 0
    first = S2CNet.load(run)
    assert read_metadata(run / "model.safetensors")["format"] == "s2cnet/1"
    # float16 weights: every value survives a round trip through float16
    assert all(torch.equal(v, v.half().float()) for v in first.state_dict().values() if v.is_floating_point())
    capsys.readouterr()
    # a --resume with another option that makes the run continued a different run silently
    assert cli.main(base + ["--epochs", "3", "--finetune-epochs", "1", "--resume", "--temperature", "0.1"]) == 1
    assert "it was trained with temperature 0.05 (now 0.1)" in capsys.readouterr().err
    assert cli.main(base + ["--epochs", "3", "--finetune-epochs", "1", "--resume"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")] == ["4/4"]
    rows = read_log(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"] and rows[-1]["stage"] == "finetune"
    straight = tmp_path / "straight"
    assert cli.main([a if a != str(run) else str(straight) for a in base] +
                    ["--epochs", "3", "--finetune-epochs", "1", "--no-blend"]) == 0
    assert_same_run(run, straight)
    last = S2CNet.load(run)
    assert not torch.equal(last.backbone.body.conv_stem.weight, first.backbone.body.conv_stem.weight)
    torch.testing.assert_close(last.backbone.body.bn1.running_var, first.backbone.body.bn1.running_var)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["last"]["epoch"] == 4 and summary["finetune_epochs"] == 1
    assert len(read_fcdb(data)[0]) == 6
    # the blend with the geometry priors: every setting of the grid measured, the best one written
    from s2c_ops.models.blend import SETTING_FIELDS, BlendSetting, S2CNetWithPriors
    from s2c_ops.training.blend_search import BLEND_GRID, choose_blend

    blend = S2CNetWithPriors.load(run / "blend.safetensors")
    measured = json.loads((run / "blend.json").read_text())
    assert len(measured["measured"]) == len(BLEND_GRID) == 3 * 4 * 6 * 2
    # every row: the setting as --blend-setting reads it, its fields, its figures
    rows = {BlendSetting.parse(r["setting"]): r for r in measured["measured"]}
    assert set(rows) == set(BLEND_GRID)
    assert all(BlendSetting(**{k: r[k] for k in SETTING_FIELDS}) == s for s, r in rows.items())
    figures = ("ratio_iou", "ratio_bde", "free_iou", "free_bde")
    best = choose_blend({s: {k: r[k] for k in figures} for s, r in rows.items()})
    chosen = measured["chosen"]
    assert chosen == summary["blend"] and BlendSetting.parse(chosen["setting"]) == best == blend.setting
    # the best of the grid: no single temperature for both protocols does better
    assert all(r["ratio_iou"] + r["free_iou"] <= chosen["ratio_iou"] + chosen["free_iou"] for r in rows.values())
    torch.testing.assert_close(blend.s2cnet.head.weight, last.head.weight)
    scores = blend(torch.zeros(1, 3, 64, 96), [torch.tensor([[0.0, 0, 96, 64], [10.0, 5, 70, 50]])],
                   [torch.tensor([[0.0, 0, 96, 64]] * 10)])
    assert scores.shape == (2,) and bool(torch.isfinite(scores).all())


def test_fcdb_training_on_every_photo_with_a_fixed_blend(tmp_path, capsys):
    """--train-split train trains on the validation photos too, so the blend is given (--blend-setting)
    rather than chosen on them."""
    from s2c_ops.data.fcdb import read_fcdb, validation_files
    from s2c_ops.models.blend import BlendSetting, S2CNetWithPriors
    from synthetic import make_fcdb

    data = tmp_path / "fcdb"
    files = make_fcdb(data, 6)
    # two photos under names of the package's validation list
    annotations = (data / "train.json").read_text()
    for old, new in zip(files[:2], validation_files()[:2]):
        (data / "images" / old).rename(data / "images" / new)
        annotations = annotations.replace(old, new)
    (data / "train.json").write_text(annotations)
    assert [len(read_fcdb(data, split)[0]) for split in ("train", "fit", "val")] == [6, 4, 2]
    run = tmp_path / "run"
    base = ["train", "--data", str(data), "--out", str(run), "--backbone-weights", "none", "--device", "cpu",
            "--proposer", "saliency", "--sample", "8", "--photos-per-step", "2", "--epochs", "1"]
    # --mirror off agrees with the setting (no trailing mirror field: off)
    assert cli.main(base + ["--train-split", "train", "--blend-setting", "0.5:0:1:1.4:0.8", "--mirror", "off"]) == 0
    assert "cached 6 photos to train on, 2 to evaluate" in capsys.readouterr().out
    measured = json.loads((run / "blend.json").read_text())
    # measured at each of its temperatures alone; ratio given taken at 1.4, free form at 1
    assert [r["setting"] for r in measured["measured"]] == ["0.5:0:1", "0.5:0:1.4"]
    chosen = measured["chosen"]
    assert chosen["setting"] == "0.5:0:1:1.4:0.8" and chosen["face_temperature"] == 0.8 and chosen["mirror"] is False
    assert chosen["ratio_iou"] == measured["measured"][1]["ratio_iou"]
    assert chosen["free_iou"] == measured["measured"][0]["free_iou"]
    assert S2CNetWithPriors.load(run / "blend.safetensors").setting == BlendSetting(0.5, 0, 1, 1.4, 0.8, mirror=False)
    base[base.index(str(run))] = str(tmp_path / "new")  # the usage errors below, found before any run
    for bad, says in ((["0.5:0"], "expected G:P:T[:TR[:TF]][:mirror]"), (["a:0:1"], "are numbers"),
                      (["0.5:0:-1"], "temperature must be None or > 0"),
                      (["0.5:0:none:1"], "ratio_temperature needs a temperature"),
                      (["0.5:0:1:1:0"], "face_temperature must be None or > 0"),
                      (["0.5:0:none:none:1"], "face_temperature needs a temperature"),
                      (["0.5:0:1:1:1:1"], "expected G:P:T"),
                      (["0.5:0:1:mirror", "--mirror", "off"], "contradicts --mirror off"),
                      (["0.5:0:1", "--mirror", "on"], "contradicts --mirror on")):
        assert cli.main(base + ["--blend-setting"] + bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("s2c train: error: --blend-setting") and says in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_status:
        cli.main(base + ["--photos-per-step", "0"])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --photos-per-step: must be at least 1, got 0\n")


def test_options_read_once_and_an_older_state_refused(tmp_path, capsys):
    """The namespace holds no parser and becomes one frozen TrainOptions; a GAICD state.pt of an earlier
    release (weights beside it, no model in it) is refused in one line rather than half resumed."""
    import dataclasses
    from argparse import ArgumentParser

    from s2c_ops.cli.main import build_parser
    from s2c_ops.cli.train import options_from

    data = tmp_path / "gaicd"
    make_gaicd(data, n_train=1, n_test=1, pixels=True, crops=4)
    run = tmp_path / "run"
    args = build_parser().parse_args(["train", "--data", str(data), "--out", str(run), "--resume"])
    assert not any(isinstance(v, ArgumentParser) for v in vars(args).values())
    options = options_from(args)
    assert (options.kind, options.epochs, options.lr, options.eval_split, options.resume) == ("gaicd", 80, 1e-4, "test", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.epochs = 1
    run.mkdir()
    torch.save({"epoch": 1, "optimiser": {}, "rows": []}, run / "state.pt")
    assert cli.main(["train", "--data", str(data), "--out", str(run), "--resume", "--device", "cpu",
                     "--backbone-weights", "none"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "lacks stage, schedule, model, config" in err, err


def test_gaicd_training_resizes_as_its_config_says(tmp_path):
    """GAICD training reads images resized as the Cropper resizes them for the model it trains (its config's
    antialias): the official configs' aliased resize, an antialiased one for a config that asks for it."""
    from dataclasses import replace

    from s2c_ops.models.config import OFFICIAL
    from s2c_ops.training.gaicd import GAICDTask
    from s2c_ops.training.options import TrainOptions
    from s2c_ops.training.run import Distributed

    make_gaicd(tmp_path / "gaic", 2, 1, pixels=True)
    run = Distributed("cpu")
    try:
        for config, antialias in (("GAICv1", False), (replace(OFFICIAL["GAICv1"], antialias=True), True)):
            options = TrainOptions.for_data(tmp_path / "gaic", tmp_path / "run", config=config)
            task = GAICDTask(options, run, print)
            assert task.train_set.preprocess.antialias is antialias
            assert task.eval_set.preprocess.antialias is antialias
    finally:
        run.close()


def test_train_refuses_to_replace_a_run_and_nan_settings(tmp_path, capsys):
    """A finished run rerun without --resume was replaced; NaN settings trained weights full of NaN (exit 0)."""
    from synthetic import make_fcdb

    data, run = tmp_path / "fcdb", tmp_path / "run"
    make_fcdb(data, 4)
    run.mkdir()
    (run / "state.pt").write_bytes(b"a run's state")
    base = ["train", "--data", str(data), "--backbone-weights", "none", "--device", "cpu"]
    assert cli.main([*base, "--out", str(run)]) == 2
    assert "holds a run: pass --resume" in capsys.readouterr().err
    assert (run / "state.pt").read_bytes() == b"a run's state"
    (tmp_path / "afile").write_text("x")
    assert cli.main([*base, "--out", str(tmp_path / "afile")]) == 2
    assert "is a file: give a run folder" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(tmp_path / "afile" / "run")]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err
    for flag, value in (("--temperature", "0"), ("--temperature", "nan"), ("--pair-weight", "nan"),
                        ("--finetune-lr", "nan"), ("--lr", "-1"), ("--pair-weight", "-0.5")):
        assert cli.main([*base, "--out", str(tmp_path / "new"), flag, value]) == 2
        assert f"{flag} must be a finite number" in capsys.readouterr().err
    for flags, message in ((["--eval-split", "bogus"], "--eval-split bogus: "), (["--device", "meta"], "--device meta"),
                           (["--device", "bogus"], "--device 'bogus'"), (["--proposer", "bogus"], "invalid choice"),
                           (["--seed", str(2**70)], "--seed: must be at most"),
                           (["--photos-per-step", "1000000000"], "--photos-per-step: must be at most 256")):
        try:
            status = cli.main([*base, "--out", str(tmp_path / "new"), *flags])
        except SystemExit as e:  # argparse's own checks
            status = e.code
        assert status == 2 and message in capsys.readouterr().err  # before any photo is cached
    assert not (tmp_path / "new").exists()


def test_a_damaged_or_replanned_run_is_refused_in_one_line_and_a_damaged_cache_made_again(tmp_path, capsys):
    """--resume of a run whose state.pt is damaged or gone, or with other --epochs (its schedule spans them):
    one line, the run's files untouched; before, tracebacks, a scheduler's error after the work, or (no
    state.pt) a new run over the weights. A damaged feature cache is made again."""
    from synthetic import make_fcdb

    data, run = tmp_path / "fcdb", tmp_path / "run"
    make_fcdb(data, 4)
    base = ["train", "--data", str(data), "--out", str(run), "--backbone-weights", "none", "--device", "cpu",
            "--eval-split", "train", "--proposer", "saliency", "--sample", "8", "--no-blend", "--epochs", "1"]
    assert cli.main(base) == 0
    capsys.readouterr()
    state = (run / "state.pt").read_bytes()
    weights = (run / "model.safetensors").read_bytes()
    assert cli.main(base[:-1] + ["2", "--resume"]) == 1
    assert "frozen stage's schedule spans" in capsys.readouterr().err
    (run / "features.rank0.pt").write_bytes(b"cut short")
    assert cli.main(base + ["--resume"]) == 0
    assert "cannot be read back" in capsys.readouterr().out
    for damaged in (b"", state[: len(state) // 2], b"not a state"):
        (run / "state.pt").write_bytes(damaged)
        assert cli.main(base + ["--resume"]) == 1
        assert f"cannot resume from {run / 'state.pt'}: it is damaged" in capsys.readouterr().err
    (run / "state.pt").unlink()
    assert cli.main(base + ["--resume"]) == 2
    assert "holds model.safetensors but no state.pt" in capsys.readouterr().err
    assert (run / "model.safetensors").read_bytes() == weights
    # a run that diverges stops at the epoch it does, before saving it (it wrote NaN weights, exit 0)
    diverged = tmp_path / "diverged"
    assert cli.main([a if a != str(run) else str(diverged) for a in base[:-1]] + ["2", "--lr", "1e30"]) == 1
    assert "or the weights are no longer finite: the run diverged" in capsys.readouterr().err
    assert not (diverged / "log.csv").exists() or len(read_log(diverged)) < 2


def test_the_run_identity_survives_a_weights_only_load(tmp_path):
    """state.pt is read with weights_only=True: a Path backbone, a numpy seed or a backbone state dict given
    from Python must not make a run impossible to resume."""
    import io

    import numpy as np

    from s2c_ops.training.options import TrainOptions
    from synthetic import make_fcdb

    make_fcdb(tmp_path / "fcdb", 2)
    for given in (dict(backbone_weights=tmp_path / "mobilenet.pth"), dict(seed=np.int64(3)),
                  dict(backbone_weights={"features.0.weight": torch.zeros(2)}), dict(config=S2CNetConfig())):
        identity = TrainOptions.for_data(tmp_path / "fcdb", tmp_path / "run", **given).identity()
        buffer = io.BytesIO()
        torch.save({"options": identity}, buffer)
        buffer.seek(0)
        assert torch.load(buffer, weights_only=True)["options"] == identity


def test_the_blend_grid_judges_a_panorama_as_the_model_does():
    """The training's blend grid measures the crop the blend chooses: past 3:1 the priors do not judge there
    either (blend.PRIOR_MAX_ASPECT), so its figures for a panorama are those of the model it writes."""
    from dataclasses import replace

    from PIL import Image

    from s2c_ops.cropping.proposals import create_proposer
    from s2c_ops.cropping.transforms import OfficialPreprocess
    from s2c_ops.models.registry import create_model
    from s2c_ops.training.blend_search import at_temperature, measure_blends
    from s2c_ops.training.features import cache_photos
    from s2c_ops.training.scoring import candidates

    default = create_model("default").float()
    setting = at_temperature(default.setting, default.setting.ratio_temperature)
    blend, preprocess = default.with_setting(setting), OfficialPreprocess()
    photo = Image.new("RGB", (3000, 600), (30, 40, 50))
    photo.paste((230, 200, 90), (2300, 100, 2700, 500))  # a bright square far right of the middle
    resized, geometry = preprocess.resize(photo)
    item = {"file": "panorama.png", "resized": resized, "geometry": geometry, "pairs": torch.zeros(0, 2, 4),
            "votes": torch.zeros(0, 2), "crop": torch.tensor([0.0, 0, 600, 600])}  # its ratio: 1:1
    cached = cache_photos(blend.s2cnet, [item], create_proposer("saliency"), blend.bbox_num, torch.device("cpu"))[0]
    boxes = candidates(cached)["ratio"]
    scores = blend(cached.view(0, preprocess), [geometry.boxes_to_model(boxes)], [cached.objects[0]])
    chosen = replace(cached, crop=boxes[int(scores.argmax())])
    assert chosen.crop[0] > 1500  # on the square, where the priors' taste for the middle would not go
    figures = measure_blends(blend.s2cnet, blend.fcdb_prior, blend.gaicd_prior, [chosen], torch.device("cpu"),
                             preprocess, grid=[setting])[setting]
    assert figures["ratio_iou"] == pytest.approx(1.0)


def test_the_blend_of_panoramas_alone_is_chosen_on_ratio_given():
    """No free-form figure (NaN) where every photo is past about 4:1: the blend is chosen on ratio given."""
    from s2c_ops.training.blend_search import BLEND_GRID, choose_blend

    undecoded = [s for s in BLEND_GRID if s.temperature is None][:3]
    nan = float("nan")
    results = {s: {"ratio_iou": iou, "ratio_bde": 0.1, "free_iou": nan, "free_bde": nan}
               for s, iou in zip(undecoded, (0.6, 0.5, 0.7))}
    assert choose_blend(results) == undecoded[2]
