"""The public names of ../shared/API.md stay importable where users import them, as the very modules
of the subpackages that hold them (not copies)."""
import importlib
import subprocess
import sys

import pytest

ALIASES = {
    "s2c_ops.backbones": "s2c_ops.models.backbones",
    "s2c_ops.candidates": "s2c_ops.cropping.candidates",
    "s2c_ops.checkpoints": "s2c_ops.models.weights",
    "s2c_ops.metrics": "s2c_ops.data.metrics",
    "s2c_ops.prior": "s2c_ops.models.prior",
    "s2c_ops.proposals": "s2c_ops.cropping.proposals",
    "s2c_ops.train": "s2c_ops.cli.train",
    "s2c_ops.transforms": "s2c_ops.cropping.transforms",
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_public_module_names(name):
    assert importlib.import_module(name) is importlib.import_module(ALIASES[name])


def test_public_names():
    import s2c_ops
    from s2c_ops.candidates import grid_anchors, ratio_anchors  # noqa: F401
    from s2c_ops.checkpoints import load_weights  # noqa: F401
    from s2c_ops.data import GAICD  # noqa: F401
    from s2c_ops.metrics import acc_k_n, bde, iou, pcc, srcc, wacc_k_n  # noqa: F401

    for name in ("S2CNet", "S2CNetConfig", "Cropper", "CropResult", "rod_align", "gaic_roi_align", "RoDAlign",
                 "GaicRoIAlign", "boxes_to_rois"):
        assert hasattr(s2c_ops, name)
    assert callable(s2c_ops.backbones.register) and callable(s2c_ops.S2CNet.from_official)


@pytest.mark.parametrize("module", ["s2c_ops.cli", "s2c_ops.train"])
def test_modules_run(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
