"""From photos to crops: pre-processing, candidate crops, object-box proposers and the Cropper (which loads,
with the models it needs, on first use: reading a dataset needs only ``images`` and ``transforms``)."""
import importlib


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(f"{__name__}.cropper"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CropResult", "Cropper"]
