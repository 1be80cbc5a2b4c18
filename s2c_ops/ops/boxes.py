"""Box formats shared by the operators and the model: torchvision's ``Tensor[K, 5]`` rois
``(batch_index, x1, y1, x2, y2)`` or a list of per-image ``Tensor[L, 4]`` boxes; and the box geometry every
layer uses (sides, overlaps, the share of a box another keeps, IoU, growing, mirroring)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

BoxesLike = Union[Tensor, Sequence[Tensor]]


def boxes_to_rois(boxes: BoxesLike) -> Tensor:
    """Returns ``Tensor[K, 5]`` rois for rois or a list of per-image ``Tensor[L, 4]`` boxes."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                "boxes given as one tensor must have shape (K, 5) with rows (batch_index, x1, y1, x2, y2), "
                f"got {tuple(boxes.shape)}"
            )
        return boxes
    if not isinstance(boxes, (list, tuple)):
        raise TypeError(f"boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}")
    if len(boxes) == 0:
        raise ValueError("boxes is an empty list: give one Tensor[L, 4] per image")
    for i, b in enumerate(boxes):
        if not isinstance(b, Tensor):
            raise TypeError(f"boxes[{i}] must be a Tensor[L, 4], got {type(b).__name__}")
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must have shape (L, 4) with rows (x1, y1, x2, y2), got {tuple(b.shape)}")
        if b.dtype != boxes[0].dtype or b.device != boxes[0].device:
            raise ValueError(
                f"boxes[{i}] is {b.dtype} on {b.device} but boxes[0] is {boxes[0].dtype} on {boxes[0].device}"
            )
    cat = torch.cat(list(boxes), dim=0)
    # Made on the device from the host's counts: a counts tensor would be a copy the host waits for.
    index = torch.cat([torch.full((b.shape[0], 1), i, dtype=cat.dtype, device=cat.device) for i, b in enumerate(boxes)])
    return torch.cat([index, cat], dim=1)


#: The smallest side a box's area is measured with (an empty box would divide by zero).
MIN_SIDE = 1e-4


def sides(boxes: Tensor) -> Tuple[Tensor, Tensor]:
    """Width and height of ``(..., 4)`` boxes, at least :data:`MIN_SIDE`."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=MIN_SIDE), (boxes[..., 3] - boxes[..., 1]).clamp(min=MIN_SIDE)


def overlap(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """Width and height of the intersection of ``(..., 4)`` boxes ``a`` and ``b`` (broadcast; 0 where they
    do not meet)."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    return iw, ih


def kept_share(crops: Tensor, boxes: Tensor) -> Tensor:
    """The share of each box of ``boxes`` that ``crops`` keep: ``area(crop & box) / area(box)``,
    ``(..., 4)`` boxes broadcast against each other (``crops[:, None]`` and ``boxes[None]``: every pair)."""
    iw, ih = overlap(crops, boxes)
    w, h = sides(boxes)
    return iw * ih / (w * h)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every box of ``a`` (..., N, 4) with every box of ``b`` (..., M, 4): (..., N, M), as
    torchvision's ``box_iou`` (batched over any leading dimensions)."""
    iw, ih = overlap(a[..., :, None, :], b[..., None, :, :])
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter)


def grow_boxes(boxes: Tensor, left: float, top: float, right: float, bottom: float, height: float,
               width: float) -> Tensor:
    """``(..., 4)`` boxes grown on each side by that share of their own width (``left``, ``right``) or height
    (``top``, ``bottom``), clamped to a ``width`` x ``height`` image."""
    x1, y1, x2, y2 = boxes.float().unbind(-1)
    w, h = x2 - x1, y2 - y1
    return torch.stack([(x1 - left * w).clamp(0, width), (y1 - top * h).clamp(0, height),
                        (x2 + right * w).clamp(0, width), (y2 + bottom * h).clamp(0, height)], -1)


def flip_boxes(boxes: Tensor, width: float) -> Tensor:
    """Boxes of an image mirrored left-right: ``x1' = width - x2``, ``x2' = width - x1``. Its own inverse."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([width - x2, y1, width - x1, y2], dim=-1)


def batched_rois(boxes: Tensor) -> Tensor:
    """``(B, L, 4)`` boxes, L per image -> ``(B * L, 5)`` rois, grouped by image (shapes may be symbolic)."""
    b, n = boxes.shape[:2]
    index = torch.arange(b, dtype=boxes.dtype, device=boxes.device)[:, None, None].expand(b, n, 1)
    return torch.cat([index, boxes], dim=2).flatten(0, 1)


def image_extent(like: Tensor, image_size: Sequence[int]) -> Tensor:
    """``(width, height)`` of an image of ``image_size`` (height, width) as a (2,) tensor like ``like``, made
    by fills on its device: no copy from the host, and symbolic sizes stay symbolic."""
    height, width = image_size
    return torch.cat([like.new_full((1,), width), like.new_full((1,), height)])


def clamp_to_image(boxes: Tensor, image_size: Sequence[int]) -> Tensor:
    """``(..., 4)`` boxes clamped into an image of ``image_size`` (height, width)."""
    return torch.minimum(boxes.clamp(min=0), image_extent(boxes, image_size).repeat(2))


def first_outside(boxes: Tensor, image_size: Sequence[int]) -> Optional[List[float]]:
    """The first of ``(N, 4)`` boxes that lies wholly outside an image of ``image_size`` (height, width), as
    a list rounded for a message, or ``None`` when each reaches into it."""
    height, width = image_size
    outside = (boxes[:, 0] >= width) | (boxes[:, 1] >= height) | (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)
    if not outside.any():
        return None
    return [round(v, 2) for v in boxes[int(outside.nonzero()[0])].tolist()]
