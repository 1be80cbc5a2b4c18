"""s2cnet: S2CNet aesthetic cropping for PyTorch.

Subpackages, each importing only those before it: ``ops`` (the s2c operators), ``models`` (S2CNet, backbones,
the geometry prior, the default model, weights), ``cropping`` (pre-processing, candidates, proposers,
Cropper), ``data`` (datasets, metrics), ``training`` and ``cli``. Importing ``s2c_ops`` loads the operators
only; everything else (timm, torchvision, the models) loads on first use of a name below.

Modules are imported where they live (``s2c_ops.cropping.candidates``, ``s2c_ops.data.metrics``,
``s2c_ops.models.backbones``, ...): no module goes by a second name.
"""
import importlib

from .ops import _extension  # noqa: F401  (registers torch.ops.s2c: compiled, or the pure-PyTorch fallback)
from .ops import (
    GaicRoIAlign,
    GaicRoIAlignAvg,
    RoDAlign,
    RoDAlignAvg,
    boxes_to_rois,
    gaic_roi_align,
    gaic_roi_align_avg,
    rod_align,
    rod_align_avg,
)

#: Names of the top level -> the module that defines them (imported on first use).
_LAZY = {
    "S2CNet": "models.s2cnet",
    "S2CNetConfig": "models.config",
    "S2CNetWithPriors": "models.blend",
    "GeometryPrior": "models.prior",
    "Cropper": "cropping.cropper",
    "CropResult": "cropping.cropper",
}


def __getattr__(name: str):
    if name in ("data", "models", "cropping", "training", "cli"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CropResult",
    "Cropper",
    "GaicRoIAlign",
    "GaicRoIAlignAvg",
    "GeometryPrior",
    "RoDAlign",
    "RoDAlignAvg",
    "S2CNet",
    "S2CNetConfig",
    "S2CNetWithPriors",
    "boxes_to_rois",
    "data",
    "gaic_roi_align",
    "gaic_roi_align_avg",
    "rod_align",
    "rod_align_avg",
]
