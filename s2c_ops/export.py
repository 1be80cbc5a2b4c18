"""A scorer for code outside Python: an ONNX model and/or an AOTInductor package of its
:class:`~s2c_ops.models.exportable.SetScorer`, and a JSON file that says what to feed it (``s2c export``;
docs/deploy.md).

The graph holds the scoring of one candidate set per image. The pre-processing, the candidates, the object
boxes and the face rule stay outside: the JSON gives the numbers and the steps, in the order the Cropper
runs them.
"""
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, NamedTuple, Union

import torch
from torch import Tensor, nn

from .cropping.cropper import Cropper
from .cropping.face_rule import FaceRule
from .cropping.images import ImageLike
from .cropping.transforms import MAX_LONG_SIDE, OfficialPreprocess
from .files import write_atomic, write_text_atomic
from .ops.boxes import clamp_to_image
from .models.exportable import INPUT_NAMES, OUTPUT_NAMES, SIDE_MULTIPLE, SetScorer

PathLike = Union[str, Path]
#: The format of the description file.
DESCRIPTION_FORMAT = "s2cnet-export/1"
#: The ONNX opset the exports are written with (the s2c operators need 18 or later: decompositions.py).
ONNX_OPSET = 20


def export_program(scorer: Union[nn.Module, SetScorer], device: Union[str, torch.device] = "cpu"
                   ) -> torch.export.ExportedProgram:
    """``torch.export`` of ``scorer``'s :class:`SetScorer` on ``device`` (a SetScorer given is moved there),
    batch size, candidate count and image size dynamic."""
    module = (scorer if isinstance(scorer, SetScorer) else SetScorer(scorer)).to(device)
    inputs = tuple(t.to(device) for t in module.example_inputs())
    with torch.no_grad():
        return torch.export.export(module, inputs, dynamic_shapes=module.dynamic_shapes())


def write_onnx(program: torch.export.ExportedProgram, path: PathLike, *, overwrite: bool = False,
               opset: int = ONNX_OPSET) -> Path:
    """The exported program as one ONNX file (weights inside), inputs and output named as in
    :data:`~s2c_ops.models.exportable.INPUT_NAMES`."""
    onnx_program = torch.onnx.export(program, dynamo=True, opset_version=opset, input_names=list(INPUT_NAMES),
                                     output_names=list(OUTPUT_NAMES), verbose=False)
    write_atomic(path, lambda tmp: onnx_program.save(tmp, external_data=False), overwrite=overwrite)
    return Path(path)


def write_aoti(program: torch.export.ExportedProgram, path: PathLike, *, overwrite: bool = False) -> Path:
    """The exported program compiled by AOTInductor into a ``.pt2`` package for the current device kind
    (load it with ``torch._inductor.aoti_load_package``, or from C++ with ``AOTIModelPackageLoader``)."""
    from torch._inductor import aoti_compile_and_package

    def write(tmp: str) -> None:
        package = tmp + ".pt2"  # AOTInductor wants a name ending .pt2
        try:
            aoti_compile_and_package(program, package_path=package)
            os.replace(package, tmp)
        finally:
            if os.path.exists(package):
                os.unlink(package)

    write_atomic(path, write, overwrite=overwrite)
    return Path(path)


def describe(scorer: Union[nn.Module, SetScorer], description: str, files: Dict[str, str]) -> Dict[str, Any]:
    """What code outside Python needs to crop with the exported scorer (docs/deploy.md)."""
    module = scorer if isinstance(scorer, SetScorer) else SetScorer(scorer)
    pre = OfficialPreprocess.for_model(module.scorer)
    d = module.bbox_num
    box = "(x1, y1, x2, y2) in pixels of images (the resized photo)"
    return {
        "format": DESCRIPTION_FORMAT,
        "model": description,
        "files": files,
        "onnx_opset": ONNX_OPSET if "onnx" in files else None,
        "inputs": {
            "images": {"shape": ["B", 3, "H", "W"], "dtype": "float32", "layout": "RGB, channels first",
                       "values": "normalised pixels of the resized photo (preprocess)"},
            "crops": {"shape": ["B", "N", 4], "dtype": "float32",
                      "values": f"N candidate crops per image, {box}, inside the image: one candidate set per "
                                "image, scored on its own (the Cropper's set: one aspect ratio's candidates)"},
            "objects": {"shape": ["B", d, 4], "dtype": "float32",
                        "values": f"exactly {d} object boxes per image, {box}, best first; fewer found: pad with "
                                  "the whole image (0, 0, W, H); boxes reaching outside are clamped"},
            "faces": {"shape": ["B"], "dtype": "bool",
                      "values": "whether faces were found in the image (the default model decodes those "
                                "images' sets at its face temperature; other scorers do not read it)"},
        },
        "outputs": {"scores": {"shape": ["B", "N"], "dtype": "float32", "values": "higher is better"}},
        "dynamic": ["B", "N", "H", "W"],
        "preprocess": {
            "resize": {"short_side": pre.short_side, "multiple": pre.multiple, "max_long_side": MAX_LONG_SIDE,
                       "rule": "scale = min(short_side / min(h, w), max_long_side / max(h, w)); each side = "
                               "max(multiple, round(side * scale / multiple) * multiple)",
                       "interpolation": "bilinear, half-pixel centres (align_corners=False)",
                       "antialias": pre.antialias, "round_to_uint8": True},
            "normalise": {"divide_by": 256.0, "mean": list(pre.mean), "std": list(pre.std),
                          "formula": "(pixel / 256 - mean[c]) / std[c], pixel the rounded 0..255 value"},
            "side_multiple": SIDE_MULTIPLE if module.reads_pixels else 1,
            "reads_pixels": module.reads_pixels,
        },
        "boxes": {
            "to_model": "original pixels * (W / w, H / h) for x and y, then x2, y2 at most W, H",
            "to_original": "model pixels / (W / w, H / h)",
        },
        "face_rule": {
            "settings": asdict(FaceRule()),
            "where": "s2c_ops/cropping/face_rule.py: FaceRule.candidates (crops of the ratio around the main "
                     "faces, added to the candidates) and FaceRule.penalty (subtracted from the scores), in model "
                     "pixels; docs/deploy.md",
        },
        "steps": [
            "resize the upright RGB photo (preprocess.resize) and normalise it (preprocess.normalise)",
            f"find the object boxes in the resized photo (any detector; {d} per image, padded with the whole image) "
            "and the faces (their head boxes come first among the objects; the package's detector looks again at "
            "the photo at a finer resolution where the faces it found are small: SecondLook in "
            "s2c_ops/cropping/proposals/faces.py)",
            "make the candidate crops of the aspect ratio in original pixels (with faces, add the face rule's "
            "candidates) and map them to model pixels (boxes.to_model)",
            "run the model: scores (B, N)",
            "with faces, subtract the face rule's penalty from each crop's score (face_rule, in model pixels)",
            "the best crop is the highest score (the first on ties); map it back with boxes.to_original",
        ],
    }


def write_description(payload: Dict[str, Any], path: PathLike, *, overwrite: bool = False) -> Path:
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n", overwrite=overwrite)
    return Path(path)


class CallerInputs(NamedTuple):
    """What the caller of an exported scorer computes for one photo and ratio (the JSON's steps), here with
    the Cropper's own parts: the model's inputs (a batch of one), the candidates in original pixels and
    the faces found (model pixels, (F, 4))."""

    images: Tensor
    crops: Tensor
    objects: Tensor
    faces: Tensor
    candidates: Tensor
    face_boxes: Tensor


def caller_inputs(cropper: Cropper, photo: ImageLike, ratio: float) -> CallerInputs:
    """The steps before the model, run by ``cropper``'s own methods (a reference for code outside Python)."""
    resized, geometry, detail = cropper._prepare(photo)
    height, width = resized.shape[-2:]
    ((objects, faces),) = cropper._find_objects([resized], [detail])
    (candidates,) = cropper._candidates(geometry, [ratio], faces=geometry.boxes_to_original(faces))
    crops = clamp_to_image(geometry.boxes_to_model(candidates), (height, width))
    has_faces = torch.tensor([cropper.face_rule is not None and len(faces) > 0])
    images = cropper.preprocess.normalise(resized[None])
    return CallerInputs(images, crops[None], objects[None], has_faces, candidates, faces)


def best_index(cropper: Cropper, scores: Tensor, inputs: CallerInputs) -> int:
    """The steps after the model: the face rule's penalty, then the best candidate (the first on ties)."""
    scores = scores.reshape(-1).float()
    if cropper.face_rule is not None and len(inputs.face_boxes):
        height, width = inputs.images.shape[-2:]
        scores = scores - cropper.face_rule.penalty(inputs.crops[0], inputs.face_boxes, height, width)
    return int(torch.argsort(scores, descending=True, stable=True)[0])
