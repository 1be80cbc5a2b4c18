"""The s2c operators: RoDAlign and GAIC's RoIAlign (``torch.ops.s2c``), their Python fronts and modules.

Importing this package registers ``torch.ops.s2c``: the compiled kernels, or the pure-PyTorch ones when
those cannot be used (see ``_extension.py``; ``implementation()`` says which).
"""
from ._extension import ExtensionWarning, implementation
from . import decompositions  # noqa: F401  (registers the ONNX decompositions)
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
from .boxes import BoxesLike, boxes_to_rois

__all__ = [
    "BoxesLike",
    "ExtensionWarning",
    "GaicRoIAlign",
    "GaicRoIAlignAvg",
    "RoDAlign",
    "RoDAlignAvg",
    "boxes_to_rois",
    "gaic_roi_align",
    "gaic_roi_align_avg",
    "implementation",
    "rod_align",
    "rod_align_avg",
]
