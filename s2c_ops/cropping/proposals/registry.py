"""Proposers by name: an open registry like the backbones' (:func:`register`, :func:`available`)."""
from typing import Any, Callable, List

from ...registry import Registry

from .base import Proposer, WholeImage
from .faces import FaceDetector
from .faces_first import FacesFirst
from .saliency import SaliencyProposer

_REGISTRY: Registry[Callable[..., Proposer]] = Registry("proposer")


def register(name: str, factory: Callable[..., Proposer], *, overwrite: bool = False) -> None:
    """Registers ``factory(**kwargs) -> Proposer`` under ``name`` (case-insensitive)."""
    _REGISTRY.add(name, factory, overwrite=overwrite)


def unregister(name: str) -> None:
    """Removes a proposer :func:`register` added."""
    _REGISTRY.remove(name)


def available() -> List[str]:
    """The registered names (what :func:`get_proposer` and ``s2c crop --proposer`` take)."""
    return _REGISTRY.names()


def get_proposer(name: str = "default", **kwargs: Any) -> Proposer:
    """A proposer by name; ``kwargs`` go to its factory. Built in: ``"default"`` (:func:`default_proposer`),
    ``"faces"`` (the same: faces first, then saliency), ``"saliency"``
    (:class:`SaliencyProposer`), ``"image"`` / ``"none"`` (whole-image boxes only). Detectors and given
    boxes need an object (a model, the boxes): build ``TorchvisionDetector`` and ``GivenBoxes`` directly."""
    return _REGISTRY[name](**kwargs)


def default_proposer(**kwargs: Any) -> FacesFirst:
    """The package's default: faces (:class:`FaceDetector`, MTCNN) as head boxes first, then salient regions
    (:class:`FacesFirst`); ``kwargs`` go to :class:`SaliencyProposer`. The same on every device and in every
    install."""
    return FacesFirst(SaliencyProposer(**kwargs), FaceDetector())


register("default", default_proposer)
register("faces", default_proposer)
register("saliency", SaliencyProposer)
register("image", WholeImage)
register("none", WholeImage)
