"""s2cnet: S2CNet aesthetic cropping for PyTorch.

Subpackages, each importing only those before it: ``ops`` (the s2c operators), ``models`` (S2CNet, backbones,
the geometry prior, the default model, weights), ``cropping`` (pre-processing, candidates, proposers,
Cropper), ``data`` (datasets, metrics), ``training`` and ``cli``. Importing ``s2c_ops`` loads the operators
only; everything else (timm, torchvision, the models) loads on first use of a name below.

The module names users import (``../shared/API.md``) are the subpackages' modules themselves:
``s2c_ops.backbones``, ``.candidates``, ``.checkpoints``, ``.metrics`` and ``.proposals`` (:data:`_ALIASES`).
"""
import importlib
import importlib.abc
import importlib.util
import sys

from .ops import _extension  # noqa: F401  (registers torch.ops.s2c: compiled, or the pure-PyTorch fallback)
from .ops import (
    GaicRoIAlign,
    GaicRoIAlignAvg,
    RoDAlign,
    RoDAlignAvg,
    boxes_to_rois,
    gaic_roi_align,
    gaic_roi_align_avg,
    rod_align,
    rod_align_avg,
)

#: Public module names -> the module (below ``s2c_ops``) they are.
_ALIASES = {
    "backbones": "models.backbones",
    "candidates": "cropping.candidates",
    "checkpoints": "models.weights",
    "metrics": "data.metrics",
    "proposals": "cropping.proposals",
}
#: Names of the top level -> the module that defines them (imported on first use).
_LAZY = {
    "S2CNet": "models.s2cnet",
    "S2CNetConfig": "models.config",
    "S2CNetWithPriors": "models.blend",
    "GeometryPrior": "models.prior",
    "Cropper": "cropping.cropper",
    "CropResult": "cropping.cropper",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``s2c_ops.<alias>`` as the very module :data:`_ALIASES` names."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name in _ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self) -> None:
        self._specs = {}  # alias -> its module's own spec, which importlib replaces with the alias's

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{_ALIASES[spec.name.rpartition('.')[2]]}")
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._specs.pop(module.__spec__.name)


sys.meta_path.append(_AliasFinder())


def __getattr__(name: str):
    if name in _ALIASES or name in ("data", "models", "cropping", "training", "cli"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CropResult",
    "Cropper",
    "GaicRoIAlign",
    "GaicRoIAlignAvg",
    "GeometryPrior",
    "RoDAlign",
    "RoDAlignAvg",
    "S2CNet",
    "S2CNetConfig",
    "S2CNetWithPriors",
    "backbones",
    "boxes_to_rois",
    "candidates",
    "checkpoints",
    "data",
    "gaic_roi_align",
    "gaic_roi_align_avg",
    "metrics",
    "proposals",
    "rod_align",
    "rod_align_avg",
]
