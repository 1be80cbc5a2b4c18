"""The scoring of a fixed number of candidates per image as one traceable module, for ``torch.export``,
AOTInductor, ONNX and ``torch.compile(fullgraph=True)`` (``s2c export`` writes it; docs/deploy.md).

:class:`SetScorer` wraps a scorer of the package (S2CNet, the geometry prior, the default model):
``forward(images, crops, objects, faces) -> scores``

- ``images`` (B, 3, H, W) float32, normalised as :mod:`s2c_ops.cropping.transforms` does (the pixels of
  the official resize: values / 256, then ImageNet's mean and std), H and W multiples of 32;
- ``crops`` (B, N, 4): one candidate set per image (say, one aspect ratio's candidates), ``(x1, y1, x2,
  y2)`` in pixels of ``images``, inside the image;
- ``objects`` (B, bbox_num, 4): each image's object boxes, clamped into the image;
- ``faces`` (B,) bool: whether faces were found in each image (the default model decodes those images'
  sets at its face temperature; the other scorers ignore it);
- returns (B, N) float32 scores, higher is better: the scorer's scores of a set scored on its own.

The forward reads no value on the host and has no loop over boxes, so B and N (and H, W) stay dynamic in
an export. The checks of values (finite boxes inside the image, the number of object boxes) are
:meth:`SetScorer.check_inputs`, the eager front door that :meth:`SetScorer.score` runs first.
"""
import copy
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .scorer import ability, check_scorer_inputs

#: The inputs and the output of the exported graph, by name.
INPUT_NAMES = ("images", "crops", "objects", "faces")
OUTPUT_NAMES = ("scores",)
#: Image sides are multiples of this (the official resize gives them; the backbone's strides need them).
SIDE_MULTIPLE = 32


class SetScorer(nn.Module):
    """A scorer of the package as a traceable ``(images, crops, objects, faces) -> (B, N)`` module (module
    docstring). It holds an eval-mode copy of ``scorer`` made without its inference fusion (the fused
    layers call oneDNN kernels an exported graph cannot hold); the scorer itself is unchanged."""

    def __init__(self, scorer: nn.Module) -> None:
        super().__init__()
        if not hasattr(scorer, "score_sets"):
            raise TypeError(f"{type(scorer).__name__} cannot be exported: it has no score_sets (the traceable form "
                            "of its call); the package's S2CNet, GeometryPrior and S2CNetWithPriors have one")
        if getattr(scorer, "inference_only", False):
            raise TypeError(f"this {type(scorer).__name__} is an inference copy (from .fused()); export the original")
        self.scorer = copy.deepcopy(scorer).eval()
        self.uses_faces = ability(scorer, "uses_faces")
        self.reads_pixels = ability(scorer, "reads_pixels")

    @property
    def bbox_num(self) -> int:
        return self.scorer.bbox_num

    def forward(self, images: Tensor, crops: Tensor, objects: Tensor, faces: Tensor) -> Tensor:
        if self.uses_faces:
            return self.scorer.score_sets(images, crops, objects, faces)
        return self.scorer.score_sets(images, crops, objects)

    def check_inputs(self, images: Tensor, crops: Tensor, objects: Tensor, faces: Tensor) -> None:
        """Raises ``ValueError`` / ``TypeError`` naming what is wrong with inputs of :meth:`forward`: shapes,
        dtypes, sides not multiples of 32, boxes that are not finite, empty, inverted, or (crops) outside
        the image (:func:`~s2c_ops.models.scorer.check_scorer_inputs`)."""
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a (B, 3, H, W) tensor, got {_shape(images)}")
        b, _, h, w = images.shape
        if self.reads_pixels and (h % SIDE_MULTIPLE or w % SIDE_MULTIPLE):
            raise ValueError(f"images' sides must be multiples of {SIDE_MULTIPLE} (the official resize), got {h}x{w}")
        for name, boxes, count in (("crops", crops, None), ("objects", objects, self.bbox_num)):
            if (not isinstance(boxes, Tensor) or boxes.dim() != 3 or boxes.shape[0] != b or boxes.shape[2] != 4
                    or (count is not None and boxes.shape[1] != count)):
                raise ValueError(f"{name} must be a ({b}, {'N' if count is None else count}, 4) tensor for {b} "
                                 f"images, got {_shape(boxes)}")
            if not boxes.is_floating_point():
                raise TypeError(f"{name} must be floating point, got {boxes.dtype}")
        if crops.shape[1] == 0:
            raise ValueError("crops holds no candidate: give at least one per image")
        if not isinstance(faces, Tensor) or faces.dtype != torch.bool or tuple(faces.shape) != (b,):
            raise ValueError(f"faces must be a ({b},) bool tensor, got {_shape(faces)}")
        check_scorer_inputs(images, list(crops), list(objects), self.bbox_num,
                            min_side=SIDE_MULTIPLE if self.reads_pixels else 1)

    @torch.no_grad()
    def score(self, images: Tensor, crops: Tensor, objects: Tensor, faces: Optional[Tensor] = None) -> Tensor:
        """:meth:`check_inputs`, then :meth:`forward` (``faces``: none by default)."""
        if faces is None:
            faces = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        self.check_inputs(images, crops, objects, faces)
        return self(images, crops, objects, faces)

    def example_inputs(self, batch: int = 2, candidates: int = 70, height: int = 256, width: int = 384,
                       seed: int = 0) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Valid random inputs of these sizes (for tracing and tests)."""
        g = torch.Generator().manual_seed(seed)

        def boxes(n: int) -> Tensor:
            size = torch.tensor([width, height, width, height], dtype=torch.float32)
            corners = torch.rand(batch, n, 2, 2, generator=g).sort(dim=2).values.flatten(2)
            return (corners * size).clamp(max=size - 1).round() + torch.tensor([0.0, 0.0, 1.0, 1.0])

        images = torch.randn(batch, 3, height, width, generator=g)
        faces = torch.arange(batch) % 2 == 1
        return images, boxes(candidates), boxes(self.bbox_num), faces

    def dynamic_shapes(self) -> Dict[str, Any]:
        """``torch.export`` dynamic shapes of :meth:`forward`'s inputs: B, N, and H, W (multiples of 32
        for a scorer that reads pixels)."""
        Dim = torch.export.Dim
        batch, candidates = Dim("batch", min=1, max=1024), Dim("candidates", min=1, max=65536)
        if self.reads_pixels:
            height = SIDE_MULTIPLE * Dim("height_32", min=1, max=256)
            width = SIDE_MULTIPLE * Dim("width_32", min=1, max=256)
        else:
            height, width = Dim("height", min=1, max=65536), Dim("width", min=1, max=65536)
        return {"images": {0: batch, 2: height, 3: width}, "crops": {0: batch, 1: candidates},
                "objects": {0: batch}, "faces": {0: batch}}


def _shape(value: Any) -> Any:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
