"""From photos to crops: pre-processing, candidate crops, object-box proposers and the Cropper (which loads,
with the models it needs, on first use: reading a dataset needs only ``images`` and ``transforms``)."""
import importlib


_HOMES = {"CropResult": "cropper", "Cropper": "cropper", "CropTable": "table", "FaceRule": "face_rule",
          "FaceDetector": "proposals.faces"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CropResult", "CropTable", "Cropper", "FaceDetector", "FaceRule"]
