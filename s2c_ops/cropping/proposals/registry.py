"""Proposers by name: an open registry like the backbones' (:func:`register`, :func:`available`)."""
from typing import Any, Callable, Dict, List

from .base import Proposer, WholeImage
from .faces import FaceDetector
from .saliency import SaliencyProposer

_REGISTRY: Dict[str, Callable[..., Proposer]] = {}


def register(name: str, factory: Callable[..., Proposer], *, overwrite: bool = False) -> None:
    """Registers ``factory(**kwargs) -> Proposer`` under ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if not key:
        raise ValueError("a proposer needs a name")
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"proposer {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[key] = factory


def available() -> List[str]:
    """The registered names (what :func:`get_proposer` and ``s2c crop --proposer`` take)."""
    return sorted(_REGISTRY)


def get_proposer(name: str = "default", **kwargs: Any) -> Proposer:
    """A proposer by name; ``kwargs`` go to its factory. Built in: ``"default"`` (:func:`default_proposer`),
    ``"faces"`` (the same: faces first, then saliency), ``"saliency"``
    (:class:`SaliencyProposer`), ``"image"`` / ``"none"`` (whole-image boxes only). Detectors and given
    boxes need an object (a model, the boxes): build ``TorchvisionDetector`` and ``GivenBoxes`` directly."""
    if not isinstance(name, str):
        raise TypeError(f"proposer name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown proposer {name!r}; valid names: {', '.join(available())}")
    return _REGISTRY[key](**kwargs)


def default_proposer(**kwargs: Any) -> SaliencyProposer:
    """The package's default: faces (:class:`FaceDetector`, MTCNN) as head boxes first, then salient regions;
    ``kwargs`` go to :class:`SaliencyProposer`. The same on every device and in every install."""
    return SaliencyProposer(faces=FaceDetector(), **kwargs)


register("default", default_proposer)
register("faces", default_proposer)
register("saliency", SaliencyProposer)
register("image", WholeImage)
register("none", WholeImage)
