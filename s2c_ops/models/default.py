"""The package's shipped crop scorers by name: the default, which ``Cropper()``, ``s2c crop`` and
``AestheticCrop()`` use when no model is given, and the geometry prior, one argument away
(``--model prior``)."""
from importlib import resources
from typing import Callable, Dict, Tuple

from torch import nn

from .blend import S2CNetWithPriors
from .prior import GeometryPrior

#: The shipped default's weights in ``s2c_ops/weights`` (``s2c train`` on FCDB writes them as
#: ``blend.safetensors``; see the README for the run).
FCDB_WEIGHTS = "s2cnet_fcdb.safetensors"


def prior() -> nn.Module:
    """The geometry prior with its shipped weights (:meth:`GeometryPrior.default`): it never looks at
    pixels, only at where a crop sits and which object boxes it keeps."""
    return GeometryPrior.default()


def fcdb() -> nn.Module:
    """S2CNet trained on FCDB's photos, blended with the geometry priors (:class:`S2CNetWithPriors`)."""
    with resources.as_file(resources.files("s2c_ops") / "weights" / FCDB_WEIGHTS) as path:
        return S2CNetWithPriors.load(path)


#: The scorers known by name: name -> (factory, description used in records and reports).
NAMED: Dict[str, Tuple[Callable[[], nn.Module], str]] = {
    "fcdb": (fcdb, "S2CNet (FCDB) + geometry priors"),
    "prior": (prior, "geometry prior"),
}
DEFAULT = "fcdb"


def named_model(name: str = DEFAULT) -> Tuple[nn.Module, str]:
    """A shipped scorer by name (``"default"`` is :data:`DEFAULT`) and its description."""
    key = DEFAULT if name == "default" else name
    if key not in NAMED:
        raise ValueError(f"unknown model {name!r}; shipped models: default, {', '.join(sorted(NAMED))}")
    factory, description = NAMED[key]
    return factory(), description + (" (default)" if key == DEFAULT else "")


def default_model() -> nn.Module:
    """The default scorer (:data:`DEFAULT`)."""
    return named_model(DEFAULT)[0]
