"""s2cnet: S2CNet aesthetic cropping for PyTorch."""
from . import _C  # noqa: F401  (registers the torch.ops.s2c operators)
from . import _library  # noqa: F401  (their fake kernels and autograd)
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

__all__ = [
    "GaicRoIAlign",
    "GaicRoIAlignAvg",
    "RoDAlign",
    "RoDAlignAvg",
    "boxes_to_rois",
    "gaic_roi_align",
    "gaic_roi_align_avg",
    "rod_align",
    "rod_align_avg",
]
