"""S2CNet as a Kornia augmentation: :class:`AestheticCrop`, and :class:`CropTable` (the crops of each image
scored once and reused every epoch; defined in :mod:`s2c_ops.cropping.table`, which the command line uses
without Kornia). The training recipe: docs/training.md."""
from s2c_ops.cropping.table import CropTable

from .aesthetic_crop import AestheticCrop

__all__ = ["AestheticCrop", "CropTable"]
