"""Faces: OpenCV's Haar cascades (the weights ship inside OpenCV 4.x wheels: ``pip install s2cnet[faces]``).

:class:`FaceDetector` finds frontal faces and faces in profile (looking either way). The default proposer
(:func:`~s2c_ops.cropping.proposals.default_proposer`) puts the faces' head boxes before its saliency boxes,
and the Cropper keeps the faces whole.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch
from torch import Tensor

#: The cascades used, from ``cv2.data.haarcascades``: (file, minNeighbors, mirrored as well). Their union
#: finds more faces than any one of them (frontal faces, tilted ones, profiles looking either way).
CASCADES: Tuple[Tuple[str, int, bool], ...] = (
    ("haarcascade_frontalface_alt2.xml", 3, False),
    ("haarcascade_frontalface_default.xml", 4, False),
    ("haarcascade_profileface.xml", 4, True),
)
INSTALL_HINT = "face detection needs OpenCV 4.x with its Haar cascades: pip install 's2cnet[faces]'"


def faces_available() -> bool:
    """Whether OpenCV and its Haar cascades are installed."""
    try:
        _cv2_with_cascades()
    except ImportError:
        return False
    return True


def _cv2_with_cascades():
    try:
        import cv2
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    import os

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None or not all(os.path.isfile(os.path.join(folder, name)) for name, _, _ in CASCADES):
        raise ImportError(f"{INSTALL_HINT} (this OpenCV, {cv2.__version__}, has no Haar cascades: OpenCV 5 "
                          "wheels dropped them)")
    return cv2, folder


class FaceDetector:
    """Face boxes of RGB images in [0, 1] (``Tensor[B, 3, H, W]``, any device; detection runs on the CPU).

    Each image is turned to grey at ``resolution`` pixels on its short side and histogram-equalised, then
    each cascade scans it (``scale_factor`` between window sizes, faces of at least ``min_size`` of the short
    side); the detections of all cascades are merged by non-maximum suppression at IoU ``nms_threshold``,
    larger faces first, and mapped back to the images' pixels.
    """

    def __init__(self, resolution: int = 256, scale_factor: float = 1.1, min_size: float = 0.06,
                 nms_threshold: float = 0.3) -> None:
        if not isinstance(resolution, int) or resolution < 32:
            raise ValueError(f"resolution must be an int >= 32, got {resolution!r}")
        if not scale_factor > 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if not 0.0 < min_size < 1.0:
            raise ValueError(f"min_size must be a fraction of the short side in (0, 1), got {min_size}")
        cv2, folder = _cv2_with_cascades()
        import os

        self.resolution = resolution
        self.scale_factor = float(scale_factor)
        self.min_size = float(min_size)
        self.nms_threshold = float(nms_threshold)
        self._cascades = [(cv2.CascadeClassifier(os.path.join(folder, name)), neighbours, mirrored)
                          for name, neighbours, mirrored in CASCADES]
        self._cv2 = cv2

    def detect_gray(self, gray: np.ndarray) -> Tensor:
        """Face boxes ``(F, 4)`` float32 ``(x1, y1, x2, y2)`` of one uint8 grey image (H, W)."""
        cv2 = self._cv2
        gray = cv2.equalizeHist(gray)
        side = max(8, int(round(self.min_size * min(gray.shape))))
        found = []
        for cascade, neighbours, mirrored in self._cascades:
            for flip in (False, True) if mirrored else (False,):
                image = np.ascontiguousarray(gray[:, ::-1]) if flip else gray
                hits = cascade.detectMultiScale(image, scaleFactor=self.scale_factor, minNeighbors=neighbours,
                                                minSize=(side, side))
                for x, y, w, h in (hits if len(hits) else []):
                    x1 = gray.shape[1] - x - w if flip else x
                    found.append([x1, y, x1 + w, y + h])
        if not found:
            return torch.zeros((0, 4), dtype=torch.float32)
        boxes = torch.tensor(found, dtype=torch.float32)
        from torchvision.ops import nms

        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[nms(boxes, area, self.nms_threshold)]

    def __call__(self, images: Tensor) -> List[Tensor]:
        height, width = images.shape[-2:]
        scale = self.resolution / min(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        gray = (0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]).clamp(0, 1).float()
        if size != (height, width):
            gray = torch.nn.functional.interpolate(gray, size=size, mode="area" if scale < 1 else "bilinear")
        gray = (gray[:, 0] * 255).round().to(torch.uint8).cpu().numpy()
        back = torch.tensor([width / size[1], height / size[0]] * 2)
        return [(self.detect_gray(g) * back).to(images.device) for g in gray]

    def __repr__(self) -> str:
        return (f"FaceDetector(resolution={self.resolution}, scale_factor={self.scale_factor}, "
                f"min_size={self.min_size})")
