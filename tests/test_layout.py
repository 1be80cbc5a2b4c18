"""The public names of ../shared/API.md stay importable where users import them, as the very modules
of the subpackages that hold them (not copies)."""
import importlib
import importlib.machinery
import subprocess
import sys

import pytest

ALIASES = {
    "s2c_ops.backbones": "s2c_ops.models.backbones",
    "s2c_ops.candidates": "s2c_ops.cropping.candidates",
    "s2c_ops.checkpoints": "s2c_ops.models.weights",
    "s2c_ops.metrics": "s2c_ops.data.metrics",
    "s2c_ops.proposals": "s2c_ops.cropping.proposals",
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_public_module_names(name):
    module = importlib.import_module(name)
    assert module is importlib.import_module(ALIASES[name])
    assert module.__spec__.name == ALIASES[name]  # the alias leaves the module's own spec alone


@pytest.mark.parametrize("name", ["prior", "transforms", "train"])
def test_no_unpromised_alias(name):
    """API.md promises these names nowhere: no module of the package is called so."""
    import s2c_ops

    assert name not in s2c_ops._ALIASES
    assert importlib.machinery.PathFinder.find_spec(f"s2c_ops.{name}", s2c_ops.__path__) is None


def test_public_names():
    import s2c_ops
    from s2c_ops.candidates import grid_anchors, ratio_anchors  # noqa: F401
    from s2c_ops.checkpoints import load_weights  # noqa: F401
    from s2c_ops.data import GAICD  # noqa: F401
    from s2c_ops.metrics import acc_k_n, bde, iou, pcc, srcc, wacc_k_n  # noqa: F401

    for name in s2c_ops.__all__:
        assert hasattr(s2c_ops, name), name
    assert {"GeometryPrior", "S2CNetWithPriors", "checkpoints", "Cropper", "S2CNet"} <= set(s2c_ops.__all__)
    assert callable(s2c_ops.backbones.register) and callable(s2c_ops.S2CNet.from_official)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_modules_run(argv):
    done = subprocess.run([sys.executable, "-m", "s2c_ops.cli", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
