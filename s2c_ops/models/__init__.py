"""Crop scorers: S2CNet (with its backbones, configs, fusion and weights), the geometry prior, the default
model (S2CNet with the priors), and the named models (:func:`create_model`, :func:`list_models`,
:func:`register_model`). The model classes load on first use."""
import importlib

from .default import create_model, list_models, register_model

_LAZY = {"S2CNet": "s2cnet", "S2CNetConfig": "config", "GeometryPrior": "prior", "S2CNetWithPriors": "blend"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GeometryPrior", "S2CNet", "S2CNetConfig", "S2CNetWithPriors", "create_model", "list_models",
           "register_model"]
