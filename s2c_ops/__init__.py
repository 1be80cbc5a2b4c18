"""s2cnet: S2CNet aesthetic cropping for PyTorch.

Subpackages: ``ops`` (the s2c operators), ``models`` (S2CNet, backbones, the geometry prior, weights),
``cropping`` (pre-processing, candidates, proposers, Cropper), ``data`` (datasets, metrics),
``training`` and ``cli``.
"""
from .ops import _extension  # noqa: F401  (registers torch.ops.s2c: compiled, or the pure-PyTorch fallback)
from . import backbones, candidates, proposals, transforms
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
from .models import S2CNet, S2CNetConfig
from .cropping import Cropper, CropResult

_LAZY = ("data", "metrics", "prior")


def __getattr__(name):
    # Submodules with heavier imports (torchvision, scipy) load on first use.
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CropResult",
    "Cropper",
    "GaicRoIAlign",
    "GaicRoIAlignAvg",
    "RoDAlign",
    "RoDAlignAvg",
    "S2CNet",
    "S2CNetConfig",
    "backbones",
    "boxes_to_rois",
    "candidates",
    "data",
    "gaic_roi_align",
    "gaic_roi_align_avg",
    "metrics",
    "prior",
    "proposals",
    "rod_align",
    "rod_align_avg",
    "transforms",
]
