"""The named crop scorers, with timm's verbs: :func:`list_models`, :func:`create_model`, :func:`register_model`.

Shipped:

* ``"default"``: S2CNet trained on FCDB's photos, blended with the geometry priors
  (:class:`~s2c_ops.models.blend.S2CNetWithPriors`); what ``Cropper()``, ``s2c crop`` and ``AestheticCrop()``
  use when no model is given.
* ``"prior"``: the geometry prior (:class:`~s2c_ops.models.prior.GeometryPrior`), which never looks at pixels.
* ``"s2cnet_gaicv1"``, ``"s2cnet_gaicv2"``: S2CNet in the authors' two configurations, with the authors'
  checkpoint given as ``checkpoint_path`` (their weights do not ship with the package).

A factory takes ``pretrained`` (the model's trained weights), ``checkpoint_path`` (weights from a file instead)
and keyword arguments of its own. Names are case-insensitive, as every registry's (:mod:`s2c_ops.registry`).
"""
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Union

from torch import nn

from ..registry import Registry
from .config import OFFICIAL
from .weights import PathLike

if TYPE_CHECKING:
    from .blend import BlendSetting

#: ``factory(pretrained=True, checkpoint_path=None, **kwargs) -> scorer``.
ModelFactory = Callable[..., nn.Module]

#: The default model's weights in ``s2c_ops/weights`` (``s2c train`` on FCDB writes them as
#: ``blend.safetensors``; see docs/models.md for the run).
DEFAULT_WEIGHTS = "s2cnet_fcdb.safetensors"


@dataclass(frozen=True)
class _Entry:
    factory: ModelFactory
    description: str  # in every record and report


_MODELS: Registry[_Entry] = Registry("model")


def register_model(fn: Optional[ModelFactory] = None, *, name: Optional[str] = None,
                   description: Optional[str] = None, overwrite: bool = False):
    """Registers ``fn(pretrained=True, checkpoint_path=None, **kwargs) -> scorer`` under ``name`` (default: the
    function's name) with the ``description`` records and reports use (default: the first line of its
    docstring). ``@register_model`` or ``@register_model(name=..., description=...)``; returns ``fn``.
    ``overwrite=True`` replaces a name already taken."""
    def add(f: ModelFactory) -> ModelFactory:
        if not callable(f):
            raise TypeError(f"register_model registers a function that makes a model, got {type(f).__name__}")
        text = description or (f.__doc__ or "").strip().split("\n")[0].rstrip(".") or f.__name__
        _MODELS.add(f.__name__ if name is None else name, _Entry(f, text), overwrite=overwrite)
        return f

    return add if fn is None else add(fn)


def list_models() -> List[str]:
    """The registered names."""
    return _MODELS.names()


def create_model(name: str, pretrained: bool = True, checkpoint_path: Optional[PathLike] = None,
                 **kwargs: Any) -> nn.Module:
    """A new scorer by name, in eval mode: with its trained weights when ``pretrained``, with those of
    ``checkpoint_path`` when given; ``kwargs`` go to the model's factory."""
    model = _MODELS[name].factory(pretrained=pretrained, checkpoint_path=checkpoint_path, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the factory of model {name!r} gave a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def model_description(name: str) -> str:
    """What records and reports call the model ``name``."""
    return _MODELS[name].description


@register_model(name="default", description="S2CNet (FCDB) + geometry priors (default)")
def _default(pretrained: bool = True, checkpoint_path: Optional[PathLike] = None,
             setting: Optional[Union["BlendSetting", str]] = None) -> nn.Module:
    """``setting``: another blend of the same weights (a :class:`~s2c_ops.models.blend.BlendSetting` or its
    text, ``"1:0.25:0.7:2:1"``)."""
    from .blend import S2CNetWithPriors

    if checkpoint_path is not None:
        model = S2CNetWithPriors.load(checkpoint_path)
    elif not pretrained:
        model = S2CNetWithPriors()
    else:
        with resources.as_file(resources.files("s2c_ops") / "weights" / DEFAULT_WEIGHTS) as path:
            model = S2CNetWithPriors.load(path)
    return model if setting is None else model.with_setting(setting)


@register_model(name="prior", description="geometry prior")
def _prior(pretrained: bool = True, checkpoint_path: Optional[PathLike] = None, **config: Any) -> nn.Module:
    """``config``: :class:`~s2c_ops.models.prior.PriorConfig`'s fields for an untrained prior."""
    from .prior import GeometryPrior, PriorConfig

    if config and (checkpoint_path is not None or pretrained):  # they would be ignored
        raise TypeError(f"the prior's config ({', '.join(config)}) makes an untrained prior: pass pretrained=False")
    if checkpoint_path is not None:
        return GeometryPrior.load(checkpoint_path)
    return GeometryPrior.default() if pretrained else GeometryPrior(PriorConfig(**config))


def _official(config: str) -> ModelFactory:
    def factory(pretrained: bool = True, checkpoint_path: Optional[PathLike] = None, **kwargs: Any) -> nn.Module:
        from .s2cnet import S2CNet

        if checkpoint_path is not None:
            return S2CNet.from_official(checkpoint_path, config)
        if pretrained:
            raise ValueError(f"the authors' {config} weights do not ship with the package: give their checkpoint as "
                             f"checkpoint_path=, or pretrained=False for an untrained S2CNet {config}")
        return S2CNet(config, **kwargs)

    return factory


for _config in OFFICIAL:
    register_model(_official(_config), name=f"s2cnet_{_config.lower()}",
                   description=f"S2CNet {_config} (official configuration)")
