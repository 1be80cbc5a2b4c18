"""The named crop scorers, timm-style: :func:`create_model`, :func:`list_models`, :func:`register_model`.

Shipped: ``"fcdb"``, the default, which ``Cropper()``, ``s2c crop`` and ``AestheticCrop()`` use when no
model is given (``"default"`` names it too), and ``"prior"``, the geometry prior (``--model prior``). Names
are case-insensitive, as the backbones' and proposers' (:mod:`s2c_ops.registry`)."""
from importlib import resources
from typing import Callable, List, NamedTuple, Optional, Tuple

from torch import nn

from ..registry import Registry

#: The shipped default's weights in ``s2c_ops/weights`` (``s2c train`` on FCDB writes them as
#: ``blend.safetensors``; see docs/models.md for the run).
FCDB_WEIGHTS = "s2cnet_fcdb.safetensors"
DEFAULT = "fcdb"


class NamedModel(NamedTuple):
    factory: Callable[[], nn.Module]
    description: str  # in every record and report


_MODELS: Registry[NamedModel] = Registry("model")


def register_model(name: str, factory: Optional[Callable[[], nn.Module]] = None, *, description: str,
                   overwrite: bool = False):
    """Registers ``factory() -> scorer`` under ``name`` with the ``description`` records and reports use;
    without ``factory``, a decorator."""
    def add(f: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        _MODELS.add(name, NamedModel(f, description), overwrite=overwrite)
        return f

    return add if factory is None else add(factory)


def list_models() -> List[str]:
    """The registered names (``"default"`` names :data:`DEFAULT` besides)."""
    return _MODELS.names()


def _key(name: str) -> str:
    return DEFAULT if _MODELS.key(name) == "default" else name


def create_model(name: str = "default") -> nn.Module:
    """A new scorer by name (``"default"``: :data:`DEFAULT`), in eval mode."""
    return _MODELS[_key(name)].factory().eval()


def model_description(name: str = "default") -> str:
    """What records and reports call the model ``name`` (the default says so)."""
    key = _key(name)
    return _MODELS[key].description + (" (default)" if _MODELS.key(key) == DEFAULT else "")


@register_model("fcdb", description="S2CNet (FCDB) + geometry priors")
def fcdb() -> nn.Module:
    """S2CNet trained on FCDB's photos, blended with the geometry priors (:class:`S2CNetWithPriors`)."""
    from .blend import S2CNetWithPriors

    with resources.as_file(resources.files("s2c_ops") / "weights" / FCDB_WEIGHTS) as path:
        return S2CNetWithPriors.load(path)


@register_model("prior", description="geometry prior")
def prior() -> nn.Module:
    """The geometry prior with its shipped weights (:meth:`GeometryPrior.default`): it never looks at
    pixels, only at where a crop sits and which object boxes it keeps."""
    from .prior import GeometryPrior

    return GeometryPrior.default()


def named_model(name: str = "default") -> Tuple[nn.Module, str]:
    """:func:`create_model` and :func:`model_description` of ``name``."""
    return create_model(name), model_description(name)


def default_model() -> nn.Module:
    """The default scorer (:data:`DEFAULT`)."""
    return create_model(DEFAULT)
