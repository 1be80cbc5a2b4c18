"""s2cnet: S2CNet aesthetic cropping for PyTorch."""
import torch  # noqa: F401  (loads the libraries _C links against)

from . import _C  # noqa: F401  (registers the torch.ops.s2c operators)
from . import _library  # noqa: F401  (their fake kernels and autograd)
from . import backbones, candidates, proposals, transforms
from .align import (
    GaicRoIAlign,
    GaicRoIAlignAvg,
    RoDAlign,
    RoDAlignAvg,
    gaic_roi_align,
    gaic_roi_align_avg,
    rod_align,
    rod_align_avg,
)
from .boxes import boxes_to_rois
from .config import S2CNetConfig
from .cropper import Cropper, CropResult
from .model import S2CNet

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
