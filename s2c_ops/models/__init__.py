"""Crop scorers: S2CNet (with its backbones, configs, fusion and weights), the geometry prior, the default
model (S2CNet with the priors), and the named models with timm's verbs (:func:`list_models`,
:func:`create_model`, :func:`register_model`); :func:`load` reads any weights file the package writes
(``model.save(path)``). The model classes load on first use."""
import importlib

from .registry import create_model, list_models, register_model
from .weights import load

_LAZY = {"S2CNet": "s2cnet", "S2CNetConfig": "config", "GeometryPrior": "prior", "S2CNetWithPriors": "blend",
         "BlendSetting": "blend"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BlendSetting", "GeometryPrior", "S2CNet", "S2CNetConfig", "S2CNetWithPriors", "create_model", "list_models", "load",
           "register_model"]
