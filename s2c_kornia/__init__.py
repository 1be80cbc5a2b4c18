"""S2CNet as a Kornia augmentation: :class:`AestheticCrop` (see its issue)."""
from .aesthetic_crop import AestheticCrop

__all__ = ["AestheticCrop"]
