"""The proposer interface and what every proposer shares: input checks, the padding rule, and the
trivial proposers (whole image, given boxes).

A proposer is a :class:`Proposer`: ``proposer(images: Tensor[B, 3, H, W], num_boxes) -> list[Tensor[num_boxes,
4]]`` (see :mod:`s2c_ops.cropping.proposals` for the promises). :meth:`Proposer.propose_objects` gives the
same boxes and, separately, the faces a proposer found (the Cropper's face rule reads them).
"""
from __future__ import annotations

import abc
import numbers
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ...precision import full_precision
from ..pixels import check_unit_range


def check_images(images: Any) -> Tuple[int, int, int]:
    """Validates a proposer's ``images`` argument and returns ``(B, H, W)``.

    Raises ``TypeError`` for a non-tensor or a non-floating-point tensor and ``ValueError`` for a
    wrong shape (not 4-D, not 3 channels, an empty dimension).
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a Tensor[B, 3, H, W], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(
            f"images must be a 4-D Tensor[B, 3, H, W] (a batch; use images[None] for one image), "
            f"got shape {tuple(images.shape)}"
        )
    if images.shape[1] != 3:
        raise ValueError(f"images must have 3 (RGB) channels in dim 1, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point RGB in [0, 1] (e.g. uint8 / 255), got dtype {images.dtype}"
        )
    b, _, h, w = images.shape
    if h < 1 or w < 1:
        raise ValueError(f"images must have a height and width >= 1, got shape {tuple(images.shape)}")
    return int(b), int(h), int(w)


def check_num_boxes(num_boxes: Any) -> int:
    """``num_boxes`` (object boxes per image: a whole number >= 1, also a numpy or one-element integer tensor)
    as an int; ``TypeError`` for another type, ``ValueError`` below 1. The one check of it (the proposers,
    the Cropper, AestheticCrop)."""
    if isinstance(num_boxes, Tensor) and num_boxes.numel() == 1 and not num_boxes.is_floating_point() \
            and num_boxes.dtype != torch.bool:
        num_boxes = int(num_boxes)
    if isinstance(num_boxes, bool) or not isinstance(num_boxes, numbers.Integral):
        raise TypeError(f"num_boxes must be an int, got {type(num_boxes).__name__}")
    if num_boxes < 1:
        raise ValueError(f"num_boxes must be >= 1 (the model's bbox_num), got {num_boxes}")
    return int(num_boxes)


def whole_image_boxes(num_boxes: int, height: int, width: int, device: Union[str, torch.device, None] = None) -> Tensor:
    """``Tensor[num_boxes, 4]`` of the whole-image box ``(0, 0, width, height)``."""
    # Made with fills, never a host-to-device copy (no synchronisation on a GPU).
    zeros = torch.zeros(num_boxes, dtype=torch.float32, device=device)
    return torch.stack([zeros, zeros, torch.full_like(zeros, float(width)), torch.full_like(zeros, float(height))], 1)


def pad_boxes(boxes: Tensor, num_boxes: int, height: int, width: int) -> Tensor:
    """Brings ranked boxes (best first) to exactly ``num_boxes`` valid boxes: the rule every proposer uses.

    Args:
        boxes: ``Tensor[L, 4]`` ``(x1, y1, x2, y2)`` in pixels of an image ``height x width``, best
            first; any ``L`` (0 included), any real dtype.
        num_boxes: how many boxes the model needs (``bbox_num``).
        height, width: the image size in pixels.

    Returns:
        ``float32`` ``Tensor[num_boxes, 4]`` on ``boxes``' device.

    The rule, in order:

    1. Each box is put right: ``x1, x2`` and ``y1, y2`` are swapped where inverted, then clamped to
       ``[0, width]`` and ``[0, height]``.
    2. Boxes with a non-finite coordinate, and boxes with no area left inside the image (zero width or
       height after clamping, e.g. a box wholly outside it), are dropped.
    3. ``L > num_boxes``: the first ``num_boxes`` are kept (proposers rank best first).
    4. ``L < num_boxes``: the missing rows are the **whole-image box** ``(0, 0, width, height)``,
       repeated; ``L == 0`` gives ``num_boxes`` whole-image boxes.

    Why the whole image and not, say, the last box repeated: it is always valid, it is the same for
    every crop of the image (it adds global context but favours no crop over another), it is what a
    detector effectively reports for a scene with no separate object, and it does not give an
    arbitrary low-ranked box extra weight in S2CNet's graph attention, which weighs all ``D`` nodes
    alike.
    """
    return pad_box_sets([boxes], num_boxes, height, width)[0]


def pad_box_sets(box_sets: Sequence[Tensor], num_boxes: int, height: int, width: int) -> Tensor:
    """:func:`pad_boxes` for a batch: ``B`` ranked ``Tensor[L_i, 4]`` of one image size to a
    ``float32`` ``Tensor[B, num_boxes, 4]`` on the first set's device, in a fixed number of tensor
    operations (no loop over the images, no synchronisation on a GPU)."""
    for boxes in box_sets:
        if not isinstance(boxes, Tensor):
            raise TypeError(f"boxes must be a Tensor[L, 4], got {type(boxes).__name__}")
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (L, 4) with rows (x1, y1, x2, y2), got {tuple(boxes.shape)}")
        if boxes.is_complex() or boxes.dtype == torch.bool:
            raise TypeError(f"boxes must be real numbers, got dtype {boxes.dtype}")
    num_boxes = check_num_boxes(num_boxes)
    n = len(box_sets)
    if n == 0:
        return pad_ranked_boxes(torch.zeros((0, 0, 4)), torch.zeros((0, 0), dtype=torch.bool), num_boxes, height, width)
    device = box_sets[0].device
    # Stacked with zero rows after each image's own; its row count is known here, so nothing waits.
    counts = torch.tensor([int(boxes.shape[0]) for boxes in box_sets])
    stacked = torch.nn.utils.rnn.pad_sequence(
        [boxes.detach().to(device=device, dtype=torch.float32) for boxes in box_sets], batch_first=True
    )
    valid = torch.arange(stacked.shape[1]) < counts[:, None]
    return pad_ranked_boxes(stacked, valid.to(device, non_blocking=True), num_boxes, height, width)


def pad_ranked_boxes(boxes: Tensor, valid: Tensor, num_boxes: int, height: int, width: int) -> Tensor:
    """:func:`pad_boxes` for a batch in one tensor: ``boxes`` ``[B, L, 4]`` ranked best first in each row,
    of which ``valid`` ``[B, L]`` marks the real ones, to a ``float32`` ``Tensor[B, num_boxes, 4]`` on
    ``boxes``' device, in a fixed number of tensor operations (no synchronisation on a GPU)."""
    num_boxes = check_num_boxes(num_boxes)
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    n = boxes.shape[0]
    # The output, plus one last row where the rows that are not kept are written.
    out = whole_image_boxes(n * num_boxes + 1, height, width, device=boxes.device)
    b = boxes.detach().to(torch.float32)
    finite = torch.isfinite(b).all(dim=-1)
    b = torch.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0)
    x1 = torch.minimum(b[..., 0], b[..., 2]).clamp(0.0, float(width))
    x2 = torch.maximum(b[..., 0], b[..., 2]).clamp(0.0, float(width))
    y1 = torch.minimum(b[..., 1], b[..., 3]).clamp(0.0, float(height))
    y2 = torch.maximum(b[..., 1], b[..., 3]).clamp(0.0, float(height))
    b = torch.stack([x1, y1, x2, y2], dim=-1)
    keep = valid & finite & (x2 > x1) & (y2 > y1)
    # Each row's rank among its image's kept rows; the first num_boxes kept rows of each image overwrite
    # its whole-image rows.
    rank = keep.long().cumsum(1) - 1
    image = torch.arange(n, device=boxes.device)[:, None]
    row = torch.where(keep & (rank < num_boxes), image * num_boxes + rank, n * num_boxes)
    out.index_put_((row.flatten(),), b.flatten(0, 1))
    return out[:-1].view(n, num_boxes, 4)


#: A proposer's way to the photo at a finer resolution than the images it is given: called with a factor,
#: the photo at that many times their size (``round``-ed), ``Tensor[1, 3, H', W']`` float RGB in [0, 1] on
#: their device. Proposers that take a second look ask for it only where they need it.
Detail = Callable[[float], Tensor]


@dataclass
class ProposedObjects:
    """What a proposer found in a batch: ``boxes``, exactly ``num_boxes`` per image (what the scorer
    takes), and ``faces``, each image's face boxes (``Tensor[F_i, 4]``, possibly empty; the Cropper's face
    rule reads them), all in pixels of the images."""

    boxes: List[Tensor]
    faces: List[Tensor]


class Proposer(abc.ABC):
    """The proposer interface: checks the input, calls :meth:`propose` without autograd, pads.

    Subclasses implement :meth:`propose`, which returns each image's boxes ranked best first, in any
    number; :meth:`__call__` turns them into exactly ``num_boxes`` with :func:`pad_boxes`. A proposer that
    finds faces implements :meth:`propose_faces` too (see :class:`~s2c_ops.cropping.proposals.FacesFirst`);
    :meth:`propose_objects` gives the boxes and the faces.
    """

    #: Whether the proposer looks at the pixels (then their range is checked, see
    #: :func:`~s2c_ops.cropping.pixels.check_unit_range`).
    uses_pixels: bool = True

    @property
    def detail_factor(self) -> Optional[float]:
        """The resolution, as a factor of the images', at which this proposer asks for the photos' details
        (:data:`Detail`), or ``None`` when it never asks (then callers need not keep the photos)."""
        return None

    def __call__(self, images: Tensor, num_boxes: int) -> List[Tensor]:
        """``images``: ``Tensor[B, 3, H, W]`` float RGB in [0, 1]. Returns ``B`` ``Tensor[num_boxes, 4]``.

        Raises ``TypeError`` / ``ValueError`` for images that are not a float ``[B, 3, H, W]`` tensor
        (or, for proposers that look at the pixels, clearly not in [0, 1]) and for ``num_boxes < 1``.
        An empty batch (``B == 0``) gives an empty list.
        """
        return self.propose_objects(images, num_boxes).boxes

    def propose_objects(self, images: Tensor, num_boxes: int, *, validate: Optional[bool] = None,
                        details: Optional[Sequence[Optional[Detail]]] = None) -> ProposedObjects:
        """The boxes of :meth:`__call__` and the faces found (:meth:`propose_faces`), from one pass.
        ``validate``: the check of the pixel values (:func:`~s2c_ops.cropping.pixels.check_unit_range`;
        ``None``: on the CPU only; the Cropper, whose pixels come from its own conversion, passes ``False``).
        ``details``: per image, the way to the photo at a finer resolution (:data:`Detail`), for proposers
        that take a second look (the default's face detector); the Cropper passes them."""
        b = check_images(images)[0]
        num_boxes = check_num_boxes(num_boxes)
        if b == 0:
            return ProposedObjects([], [])
        if self.uses_pixels:
            check_unit_range(images, validate)
        with torch.no_grad(), full_precision(images.device):
            return self._propose_objects(images, num_boxes, details)

    def _propose_objects(self, images: Tensor, num_boxes: int,
                         details: Optional[Sequence[Optional[Detail]]] = None) -> ProposedObjects:
        """:meth:`propose_objects` on checked images, without autograd: :meth:`propose`'s boxes, padded,
        and :meth:`propose_faces`'s faces."""
        b, _, h, w = images.shape
        ranked, faces = self._ranked(images, details)
        if len(ranked) != b or len(faces) != b:
            raise RuntimeError(f"{type(self).__name__} returned {len(ranked)} box sets and {len(faces)} face sets "
                               f"for {b} images")
        # Padded where the proposer left them, then moved in one copy.
        boxes = list(pad_box_sets(ranked, num_boxes, h, w).to(images.device).unbind(0))
        return ProposedObjects(boxes, [f.to(images.device) for f in faces])

    def _ranked(self, images: Tensor, details: Optional[Sequence[Optional[Detail]]] = None
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Each image's ranked boxes (:meth:`propose`) and its faces (:meth:`propose_faces`); ``details``
        unused here."""
        return self.propose(images), self.propose_faces(images)

    @abc.abstractmethod
    def propose(self, images: Tensor) -> List[Tensor]:
        """Each image's boxes ``Tensor[L_i, 4]`` best first, any ``L_i``; ``images`` already checked."""

    def propose_faces(self, images: Tensor) -> List[Tensor]:
        """Each image's face boxes ``Tensor[F_i, 4]`` (none for proposers that do not look for faces)."""
        return [torch.zeros((0, 4), dtype=torch.float32, device=images.device) for _ in range(images.shape[0])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class WholeImage(Proposer):
    """``num_boxes`` copies of the whole-image box ``(0, 0, W, H)``: a trivial baseline (no objects)."""

    uses_pixels = False

    def propose(self, images: Tensor) -> List[Tensor]:
        return [images.new_zeros((0, 4), dtype=torch.float32) for _ in range(images.shape[0])]


class GivenBoxes(Proposer):
    """Boxes the user already has, padded or truncated to ``num_boxes`` with :func:`pad_boxes`.

    Args:
        boxes: one of

            * a list (or tuple) of ``Tensor[L_i, 4]`` ``(x1, y1, x2, y2)``, one per image, best first
              (``L_i`` may differ, 0 included);
            * a ``Tensor[B, L, 4]``: ``L`` boxes for each of ``B`` images;
            * a ``Tensor[L, 4]``: the boxes of a single image;
            * a ``Tensor[K, 5]`` of rois ``(batch_index, x1, y1, x2, y2)``, boxes of each image in row
              order; an image with no row gets whole-image boxes.

    The boxes must be in pixels of the ``images`` tensor the proposer is called with (scale them
    with the image when resizing). Calling with a number of images that does not match raises
    ``ValueError``.
    """

    uses_pixels = False

    def __init__(self, boxes: Union[Tensor, Sequence[Tensor]]) -> None:
        self._rois: Optional[Tensor] = None
        if isinstance(boxes, Tensor):
            if boxes.dim() == 3 and boxes.shape[2] == 4:
                per_image = list(boxes.unbind(0))
            elif boxes.dim() == 2 and boxes.shape[1] == 4:
                per_image = [boxes]
            elif boxes.dim() == 2 and boxes.shape[1] == 5:
                if boxes.shape[0] and not torch.isfinite(boxes[:, 0]).all():
                    raise ValueError("rois have a non-finite batch index")
                if boxes.shape[0] and (boxes[:, 0] < 0).any():
                    raise ValueError("rois have a negative batch index")
                self._rois = boxes.detach()
                per_image = []
            else:
                raise ValueError(
                    "boxes given as one tensor must be Tensor[B, L, 4], Tensor[L, 4] (one image) or "
                    f"rois Tensor[K, 5], got shape {tuple(boxes.shape)}"
                )
        elif isinstance(boxes, (list, tuple)):
            per_image = list(boxes)
            for i, b in enumerate(per_image):
                if not isinstance(b, Tensor):
                    raise TypeError(f"boxes[{i}] must be a Tensor[L, 4], got {type(b).__name__}")
                if b.dim() != 2 or b.shape[1] != 4:
                    raise ValueError(
                        f"boxes[{i}] must have shape (L, 4) with rows (x1, y1, x2, y2), got {tuple(b.shape)}"
                    )
        else:
            raise TypeError(
                f"boxes must be a list of Tensor[L, 4] or a Tensor, got {type(boxes).__name__}"
            )
        self.boxes: List[Tensor] = [b.detach() for b in per_image]

    def propose(self, images: Tensor) -> List[Tensor]:
        n = images.shape[0]
        if self._rois is not None:
            index = self._rois[:, 0].long()
            if index.numel() and int(index.max()) >= n:
                raise ValueError(f"rois refer to image {int(index.max())} but {n} image(s) were given")
            return [self._rois[index == i, 1:] for i in range(n)]
        if len(self.boxes) != n:
            raise ValueError(f"GivenBoxes holds boxes for {len(self.boxes)} image(s) but {n} image(s) were given")
        return list(self.boxes)

    def extra_repr(self) -> str:
        if self._rois is not None:
            return f"rois={self._rois.shape[0]}"
        return f"images={len(self.boxes)}"
