"""How ``s2c`` commands end (s2c_ops/cli/errors.py): usage errors exit 2 (a missing optional library named
with its install command), failures of the model or the run exit 1, each with one line; every command and
option has help text."""
import argparse
import importlib

import pytest
import torch

from s2c_ops import cli
from s2c_ops.cli.errors import missing_library
from s2c_ops.cropping.proposals import register_proposer
from test_crop_cli import DEMO, run_cli

crop_run = importlib.import_module("s2c_ops.cli.crop.run")  # the module (s2c_ops.cli.crop.run is its function)


def needs_detector_lib(**kwargs):
    raise ModuleNotFoundError("No module named 'detector_lib'", name="detector_lib")


@pytest.mark.parametrize("error, line", [
    (ModuleNotFoundError("No module named 'detector_lib.nets'", name="detector_lib.nets"),
     "No module named 'detector_lib.nets': install it with pip install detector_lib"),
    (ModuleNotFoundError("No module named 'kornia.augmentation'", name="kornia.augmentation"),
     "No module named 'kornia.augmentation': install it with pip install 's2cnet[kornia]'"),
    (ImportError("face detection needs OpenCV: pip install 's2cnet[faces]'\nmore"),
     "face detection needs OpenCV: pip install 's2cnet[faces]'"),
])
def test_missing_library_line(error, line):
    assert missing_library(error) == line


def test_missing_extra_is_a_usage_error(capsys, monkeypatch):
    """A proposer whose library is not installed (say a plug-in registered by name)."""
    register_proposer("needs_detector_lib", needs_detector_lib, overwrite=True)
    rc, _, err = run_cli(["crop", DEMO / "chelsea.png", "--ratio", "1:1", "--proposer", "needs_detector_lib"], capsys)
    assert rc == 2
    assert err.strip().splitlines() == ["s2c crop: error: No module named 'detector_lib': install it with pip "
                                        "install detector_lib"]


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"),
                                   ValueError("the checkpoint holds no weights")])
def test_model_failure_exits_1_with_one_line(capsys, monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setattr(crop_run, "load_model", fail)
    rc, _, err = run_cli(["crop", DEMO / "chelsea.png", "--ratio", "1:1"], capsys)
    first = str(error).splitlines()[0]
    assert rc == 1 and err.strip().splitlines() == [f"s2c crop: error: {type(error).__name__}: {first}"]


def test_every_command_and_option_has_help():
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"crop", "eval", "export", "table", "train", "train-prior"}
    for name, sub in commands.choices.items():
        assert sub.description, f"s2c {name} has no description"
        bare = [a.option_strings or a.dest for a in sub._actions if not a.help]
        assert not bare, f"s2c {name}: options without help: {bare}"
