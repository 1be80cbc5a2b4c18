"""The public names of ../shared/API.md import where the code keeps them: the subpackages' own modules,
with no second names."""
import importlib
import importlib.abc
import importlib.util
import subprocess
import sys

import pytest

#: The modules ../shared/API.md names, where they live.
PUBLIC_MODULES = ["s2c_ops.cropping.candidates", "s2c_ops.cropping.proposals", "s2c_ops.data.metrics",
                  "s2c_ops.models.backbones", "s2c_ops.models.weights", "s2c_ops.ops"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_modules_are_their_own(name):
    module = importlib.import_module(name)
    assert module.__name__ == module.__spec__.name == name


@pytest.mark.parametrize("name", ["backbones", "candidates", "checkpoints", "metrics", "proposals", "prior",
                                  "transforms", "train"])
def test_no_second_names(name):
    """No module of the package goes by a second name: the alias finder of earlier releases is gone."""
    import s2c_ops

    assert importlib.util.find_spec(f"s2c_ops.{name}") is None
    assert not hasattr(s2c_ops, name)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"s2c_ops.{name}")


def test_public_names():
    import s2c_ops
    from s2c_ops.cropping.candidates import grid_anchors, ratio_anchors  # noqa: F401
    from s2c_ops.data import GAICD  # noqa: F401
    from s2c_ops.data.metrics import acc_k, bde, iou, pcc, srcc, wacc  # noqa: F401
    from s2c_ops.models import load  # noqa: F401

    for name in s2c_ops.__all__:
        assert hasattr(s2c_ops, name), name
    assert {"GeometryPrior", "S2CNetWithPriors", "Cropper", "S2CNet"} <= set(s2c_ops.__all__)
    assert not any(isinstance(f, importlib.abc.MetaPathFinder) and type(f).__module__.startswith("s2c_ops")
                   for f in sys.meta_path)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_modules_run(argv):
    done = subprocess.run([sys.executable, "-m", "s2c_ops.cli", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
