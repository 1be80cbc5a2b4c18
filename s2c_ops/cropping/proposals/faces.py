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


def _in_colour(rgb: np.ndarray) -> bool:
    """Whether an RGB image has colour (a grey photo has no skin tone to check)."""
    return float(np.abs(rgb[..., 0].astype(np.int16) - rgb[..., 2].astype(np.int16)).mean()) > 3


def skin_share(rgb: np.ndarray, box) -> float:
    """The share of the central 60% of ``box`` (x1, y1, x2, y2) whose colour is a skin tone: in YCrCb,
    Cr in [133, 180] and Cb in [77, 130] (a widened form of Chai and Ngan's rule)."""
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    dx, dy = (x2 - x1) // 5, (y2 - y1) // 5
    patch = rgb[max(0, y1 + dy) : max(0, y2 - dy), max(0, x1 + dx) : max(0, x2 - dx)]
    if patch.size == 0:
        return 0.0
    ycc = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return float(((cr >= 133) & (cr <= 180) & (cb >= 77) & (cb <= 130)).mean())


class FaceDetector:
    """Face boxes of RGB images in [0, 1] (``Tensor[B, 3, H, W]``, any device; detection runs on the CPU).

    Each image is turned to grey at ``resolution`` pixels on its short side and histogram-equalised, then
    each cascade scans it (``scale_factor`` between window sizes, faces of at least ``min_size`` of the short
    side); the detections of all cascades are merged by non-maximum suppression at IoU ``nms_threshold``,
    larger faces first, and mapped back to the images' pixels. In a colour image a detection is kept only
    when at least ``min_skin`` of its central part has a skin tone (:func:`skin_share`): that removes the
    cascades' false faces in sky, foliage and water. Give it antialiased images (aliasing erases faces).
    """

    def __init__(self, resolution: int = 256, scale_factor: float = 1.1, min_size: float = 0.06,
                 nms_threshold: float = 0.3, min_skin: float = 0.15) -> None:
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
        self.min_skin = float(min_skin)
        self._cascades = [(cv2.CascadeClassifier(os.path.join(folder, name)), neighbours, mirrored)
                          for name, neighbours, mirrored in CASCADES]
        self._cv2 = cv2

    def detect(self, rgb: np.ndarray) -> Tensor:
        """Face boxes ``(F, 4)`` float32 ``(x1, y1, x2, y2)`` of one uint8 RGB image (H, W, 3)."""
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
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
        boxes = boxes[nms(boxes, area, self.nms_threshold)]
        if self.min_skin > 0 and _in_colour(rgb):
            boxes = boxes[torch.tensor([skin_share(rgb, b) >= self.min_skin for b in boxes.tolist()], dtype=torch.bool)]
        return boxes

    def __call__(self, images: Tensor) -> List[Tensor]:
        height, width = images.shape[-2:]
        scale = self.resolution / min(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        rgb = images.detach().float().clamp(0, 1)
        if size != (height, width):
            rgb = torch.nn.functional.interpolate(rgb, size=size, mode="bilinear", antialias=True)
        rgb = (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        back = torch.tensor([width / size[1], height / size[0]] * 2)
        return [(self.detect(np.ascontiguousarray(a)) * back).to(images.device) for a in rgb]

    def __repr__(self) -> str:
        return (f"FaceDetector(resolution={self.resolution}, scale_factor={self.scale_factor}, "
                f"min_size={self.min_size})")
