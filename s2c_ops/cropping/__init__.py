"""From photos to crops: pre-processing, candidate crops, object-box proposers and the Cropper."""
from .cropper import Cropper, CropResult

__all__ = ["CropResult", "Cropper"]
