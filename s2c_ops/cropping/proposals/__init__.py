"""Object-box proposers: the D "visual genes" S2CNet needs for each image.

S2CNet relates every candidate crop to exactly ``D`` object boxes per image (``bbox_num``: 10 in the
GAICv1 configuration, 5 in GAICv2). The official code only reads boxes precomputed offline with a
Visual Genome Faster R-CNN; this package makes them for new photos.

A proposer is a :class:`Proposer` (the one interface; any callable of the same form is accepted where
a proposer is taken):

.. code-block:: python

    proposer(images: Tensor[B, 3, H, W], num_boxes: int) -> list[Tensor[num_boxes, 4]]

with these promises:

* ``images`` is a floating-point batch of **RGB images with values in [0, 1], not normalised** (no
  ImageNet mean/std): what ``torchvision.transforms.functional.to_tensor`` gives, or the model's input
  *before* its normalisation. Give the proposer the same pixels (same height and width) as the
  model, since the boxes are in the pixels of this tensor.
* The result holds one ``float32`` tensor per image, on the images' device, with **exactly**
  ``num_boxes`` rows ``(x1, y1, x2, y2)`` in pixels, inside ``[0, W] x [0, H]``, with ``x2 > x1`` and
  ``y2 > y1``. Boxes come best first.
* Proposers do not track gradients and are deterministic.

Every proposer brings its ranked boxes to the same size with :func:`pad_boxes`: the first ``num_boxes``
are kept and missing ones are the whole-image box ``(0, 0, W, H)``. :meth:`Proposer.propose_objects`
also returns the faces a proposer found (the Cropper's face rule reads them).

Proposers by name, with timm's verbs (:func:`create_proposer` builds one, :func:`register_proposer` adds a
name, :func:`list_proposers` lists them):

* ``"default"``: faces (:mod:`.faces`, MTCNN in PyTorch with shipped weights) as head boxes first, then
  salient regions (:class:`FacesFirst`).
* :class:`SaliencyProposer` (``"saliency"``): salient regions alone, offline, no weights.
* :class:`TorchvisionDetector`: wraps a torchvision detection model the user brings.
* :class:`GivenBoxes`: boxes the user already has (e.g. the official precomputed files).
* :class:`WholeImage` (``"image"``): ``num_boxes`` copies of the whole-image box, a
  trivial baseline.
"""
from .base import (
    Detail,
    GivenBoxes,
    ProposedObjects,
    Proposer,
    WholeImage,
    check_images,
    check_num_boxes,
    pad_box_sets,
    pad_boxes,
    whole_image_boxes,
)
from .detectors import TorchvisionDetector
from .faces import FaceBoxes, FaceDetector, SecondLook
from .faces_first import FacesFirst
from .registry import create_proposer, list_proposers, register_proposer
from .saliency import (
    SaliencyProposer,
    global_contrast_saliency,
    label_components,
    saliency_map,
    spectral_residual_saliency,
)

__all__ = [
    "Detail",
    "FaceBoxes",
    "FaceDetector",
    "FacesFirst",
    "GivenBoxes",
    "ProposedObjects",
    "Proposer",
    "SaliencyProposer",
    "SecondLook",
    "TorchvisionDetector",
    "WholeImage",
    "check_images",
    "check_num_boxes",
    "create_proposer",
    "global_contrast_saliency",
    "label_components",
    "list_proposers",
    "pad_box_sets",
    "pad_boxes",
    "register_proposer",
    "saliency_map",
    "spectral_residual_saliency",
    "whole_image_boxes",
]
