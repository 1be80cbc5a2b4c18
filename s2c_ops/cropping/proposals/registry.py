"""Proposers by name, with timm's verbs: :func:`list_proposers`, :func:`create_proposer`,
:func:`register_proposer`. Names are case-insensitive, as every registry's (:mod:`s2c_ops.registry`)."""
from typing import Any, Callable, List, Optional

from ...registry import Registry

from .base import Proposer, WholeImage
from .faces import FaceDetector
from .faces_first import FacesFirst
from .saliency import SaliencyProposer

ProposerFactory = Callable[..., Proposer]

_REGISTRY: Registry[ProposerFactory] = Registry("proposer")


def register_proposer(name: str, factory: Optional[ProposerFactory] = None, *, overwrite: bool = False):
    """Registers ``factory(**kwargs) -> Proposer`` under ``name``; without ``factory``, a decorator.
    ``overwrite=True`` replaces a name already taken."""
    if callable(name) and factory is None:  # @register_proposer without its name
        raise TypeError("register_proposer takes the name first: @register_proposer('name') or "
                        "register_proposer('name', factory)")

    def add(f: ProposerFactory) -> ProposerFactory:
        if not callable(f):
            raise TypeError(f"register_proposer registers a function or class that makes a proposer, got "
                            f"{type(f).__name__}")
        _REGISTRY.add(name, f, overwrite=overwrite)
        return f

    return add if factory is None else add(factory)


def list_proposers() -> List[str]:
    """The registered names (what :func:`create_proposer` and ``s2c crop --proposer`` take)."""
    return _REGISTRY.names()


def create_proposer(name: str = "default", **kwargs: Any) -> Proposer:
    """A proposer by name; ``kwargs`` go to its factory. Built in: ``"default"`` (faces first, then salient
    regions: :class:`FacesFirst` of a :class:`FaceDetector` and a :class:`SaliencyProposer` that ``kwargs``
    configure), ``"saliency"`` (:class:`SaliencyProposer`), ``"image"`` (whole-image boxes only). Detectors
    and given boxes need an object (a model, the boxes): build ``TorchvisionDetector`` and ``GivenBoxes``
    directly."""
    proposer = _REGISTRY[name](**kwargs)
    if not callable(proposer):
        raise TypeError(f"the factory of proposer {name!r} gave a {type(proposer).__name__}, not a proposer")
    return proposer


@register_proposer("default")
def _faces_then_saliency(**kwargs: Any) -> FacesFirst:
    """The same on every device and in every install: MTCNN with shipped weights, then salient regions."""
    return FacesFirst(SaliencyProposer(**kwargs), FaceDetector())


register_proposer("saliency", SaliencyProposer)
register_proposer("image", WholeImage)
