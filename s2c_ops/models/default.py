"""The package's default crop scorer: what ``Cropper()``, ``s2c crop`` and ``AestheticCrop()`` use when no
model is given, and the geometry prior, one argument away (``--model prior``)."""
from typing import Callable, Dict, Tuple

from torch import nn

from .prior import GeometryPrior


def prior() -> nn.Module:
    """The geometry prior with its shipped weights (:meth:`GeometryPrior.default`)."""
    return GeometryPrior.default()


#: The scorers known by name: name -> (factory, description used in records and reports).
NAMED: Dict[str, Tuple[Callable[[], nn.Module], str]] = {
    "prior": (prior, "geometry prior"),
}
DEFAULT = "prior"


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
