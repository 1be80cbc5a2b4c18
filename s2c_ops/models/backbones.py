"""Backbones: a registry of feature extractors backed by timm's ``features_only`` models, with timm's verbs
(:func:`list_backbones`, :func:`create_backbone`, :func:`register_backbone`).

S2CNet fuses three feature maps at strides 8, 16 and 32. A registered backbone names a timm model and
the ``out_indices`` giving those three maps; its channel counts come from timm's ``feature_info``.
``mobilenetv2_100`` with stages 2, 3, 4 is exactly the official slicing of torchvision's MobileNetV2
(``features[:7]``, ``[7:14]``, ``[14:]`` without the final 1x1 conv).
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from torch import Tensor, nn

from ..registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone: ``factory(pretrained)`` returns a module mapping images to the
    stride-8, 16 and 32 feature maps, with ``feature_info.channels()`` like timm's."""

    factory: Callable[[bool], nn.Module]
    description: str = ""
    #: Every BatchNorm directly follows, in forward order, the convolution before it among its
    #: siblings (checked for the built-in backbones): ``fusion.fold_batchnorm`` may merge them.
    foldable: bool = False


_REGISTRY: Registry[BackboneSpec] = Registry("backbone")


def register_backbone(name: str, factory: Optional[Callable[[bool], nn.Module]] = None, *,
                      timm_name: Optional[str] = None, out_indices: Sequence[int] = (2, 3, 4), description: str = "",
                      foldable: bool = False, overwrite: bool = False) -> None:
    """Registers a backbone under ``name``: either a ``factory(pretrained: bool) -> nn.Module`` or a
    timm model name with the ``out_indices`` of its stride-8/16/32 stages. ``foldable=True`` declares
    that each BatchNorm directly follows the sibling convolution before it (see
    :func:`s2c_ops.models.fusion.fold_batchnorm`). Names are case-insensitive. ``overwrite=True`` replaces a
    name already taken."""
    if (factory is None) == (timm_name is None):
        raise ValueError("register_backbone() takes exactly one of factory or timm_name")
    if factory is None:
        indices = tuple(out_indices)

        def factory(pretrained: bool, _timm_name=timm_name) -> nn.Module:
            import timm  # imported on first use: it costs ~1 s at start-up

            return timm.create_model(_timm_name, pretrained=pretrained, features_only=True, out_indices=indices)

        description = description or f"timm {timm_name}, stages {indices}"
    _REGISTRY.add(name, BackboneSpec(factory, description, foldable), overwrite=overwrite)


def list_backbones() -> List[str]:
    """Names of the registered backbones."""
    return _REGISTRY.names()


def create_backbone(name: str, pretrained: bool = False) -> "Backbone":
    """The registered backbone ``name`` (ImageNet weights when ``pretrained``)."""
    return Backbone(name, pretrained)


class Backbone(nn.Module):
    """A registered feature extractor (:func:`create_backbone`); ``forward`` returns the three feature maps."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        spec = _REGISTRY[name]
        self.name = name
        self.body = spec.factory(pretrained)
        channels = list(self.body.feature_info.channels())
        reductions = list(self.body.feature_info.reduction())
        if len(channels) != 3 or reductions != [8, 16, 32]:
            raise ValueError(
                f"backbone {name!r} must give 3 feature maps at strides 8, 16, 32; got strides {reductions}"
            )
        self.channels: Tuple[int, int, int] = tuple(channels)
        self.foldable = spec.foldable

    def forward(self, images: Tensor) -> List[Tensor]:
        return self.body(images)


register_backbone("mobilenetv2_100", timm_name="mobilenetv2_100", description="MobileNetV2 1.0 (official S2CNet)",
         foldable=True)
register_backbone("efficientnet_b1", timm_name="efficientnet_b1", foldable=True)
register_backbone("resnet50", timm_name="resnet50", foldable=True)
