"""Faces first: a face detector's head boxes before another proposer's boxes (the default proposer)."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..face_rule import FaceRule
from .base import Detail, Proposer
from .faces import FaceDetector


class FacesFirst(Proposer):
    """The faces ``faces`` finds (a :class:`FaceDetector` unless given), as ``rule``'s head boxes
    (:meth:`FaceRule.heads <s2c_ops.cropping.face_rule.FaceRule.heads>`), then the boxes of ``objects``;
    :meth:`propose_objects` also gives the faces (the Cropper's face rule reads them). Given the photos'
    ``details``, a :class:`FaceDetector` takes its second look (:class:`~.faces.SecondLook`)."""

    def __init__(self, objects: Proposer, faces: Optional[Callable[[Tensor], List[Tensor]]] = None,
                 rule: Optional[FaceRule] = None) -> None:
        if not isinstance(objects, Proposer):
            raise TypeError(f"objects must be a Proposer, got {type(objects).__name__}")
        if faces is not None and not callable(faces):
            raise TypeError(f"faces must be a face detector (callable), got {type(faces).__name__}")
        self.objects = objects
        self.faces = faces if faces is not None else FaceDetector()
        self.rule = rule if rule is not None else FaceRule()

    @property
    def detail_factor(self) -> Optional[float]:
        look = self.faces.second_look if isinstance(self.faces, FaceDetector) else None
        return None if look is None else look.factor

    def propose_faces(self, images: Tensor) -> List[Tensor]:
        return self.faces(images)

    def propose(self, images: Tensor) -> List[Tensor]:
        return self.objects.propose(images)

    def _ranked(self, images: Tensor, details: Optional[Sequence[Optional[Detail]]] = None
                ) -> Tuple[List[Tensor], List[Tensor]]:
        h, w = images.shape[-2:]
        faces = self.propose_faces(images)
        if details is not None and isinstance(self.faces, FaceDetector):
            faces = self.faces.look_again(faces, details, h, w)
        ranked = self.propose(images)
        if len(faces) == len(ranked):  # else the base class says what went wrong
            ranked = [torch.cat([self.rule.heads(f.to(r.device), h, w), r.float()]) if len(f) else r
                      for f, r in zip(faces, ranked)]
        return ranked, faces

    def extra_repr(self) -> str:
        return f"objects={self.objects}, faces={self.faces}"
