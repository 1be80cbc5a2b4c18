"""Inference fusion behind :meth:`S2CNet.fused`: BatchNorms folded into the convolutions before them,
and every convolution and linear layer run, on the CPU, as one oneDNN pass with its activation.

PyTorch runs a float32 ``nn.Linear`` on the CPU through MKL's sgemm, and a convolution through oneDNN
with its weights reordered on every call and the activation as a separate pass over the output. The
fused layers call oneDNN's fused operators instead (the ones torch.compile's CPU backend emits):
``mkldnn::_linear_pointwise`` and ``mkldnn::_convolution_pointwise`` with the convolution weights
reordered once per input shape. They compute the same function to float32 rounding. Elsewhere (other
devices or dtypes, autograd, autocast, torch.compile tracing) the layers run their plain modules.
"""
import functools
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_ONEDNN = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
)

#: Input shapes whose reordered convolution weights a FusedConv2d keeps.
_SHAPES_PACKED = 4


@functools.lru_cache(maxsize=None)
def onednn_works() -> bool:
    """Whether this build's fused operators exist and agree with the plain ones on a small case (a
    build without them, or with other post-op support on another CPU, keeps the plain modules)."""
    if not _ONEDNN:
        return False
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, 6, generator=g).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(8, 8, 3, 3, generator=g), torch.randn(8, generator=g)
    rows, w_rows = torch.randn(5, 72, generator=g), w.flatten(1)
    ops = torch.ops.mkldnn
    try:
        with torch.no_grad():
            packed = ops._reorder_convolution_weight(w, [1, 1], [1, 1], [1, 1], 1, list(x.shape))
            conv = ops._convolution_pointwise(x, packed, b, [1, 1], [1, 1], [1, 1], 1, "hardtanh", [0.0, 6.0], "")
            linear = ops._linear_pointwise(rows, w_rows, b, "gelu", [], "none")
            return bool(
                torch.allclose(conv, F.conv2d(x, w, b, padding=1).clamp(0, 6), atol=1e-4)
                and torch.allclose(linear, F.gelu(F.linear(rows, w_rows, b)), atol=1e-4)
            )
    except RuntimeError:
        return False


def _onednn_attr(activation: nn.Module) -> Optional[Tuple[str, List[float], str]]:
    """oneDNN's post-op for ``activation`` (attr, scalars, algorithm), or None if it has none."""
    if isinstance(activation, nn.Identity):
        return "none", [], ""
    if type(activation) is nn.ReLU:
        return "relu", [], ""
    if isinstance(activation, nn.Hardtanh):  # nn.ReLU6 included
        return "hardtanh", [float(activation.min_val), float(activation.max_val)], ""
    if type(activation) is nn.SiLU:
        return "swish", [], ""
    if type(activation) is nn.GELU:
        return "gelu", [], activation.approximate
    return None


def _use_onednn(x: Tensor, weight: Tensor, attr) -> bool:
    return (
        attr is not None
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and onednn_works()
    )


class FusedLinear(nn.Linear):
    """``activation(linear(x))``; on the CPU one oneDNN pass. Shares ``linear``'s parameters."""

    def __init__(self, linear: nn.Linear, activation: Optional[nn.Module] = None) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.activation = activation if activation is not None else nn.Identity()
        self._attr = _onednn_attr(self.activation)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() >= 2 and _use_onednn(x, self.weight, self._attr):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, *self._attr)
        return self.activation(F.linear(x, self.weight, self.bias))


class FusedConv2d(nn.Conv2d):
    """``activation(conv(x))``; on the CPU, for channels-last inputs (S2CNet's backbone runs
    channels-last), one oneDNN pass with weights reordered once per input shape (the reordered copy
    is a cache: not a parameter, not copied or saved). Shares ``conv``'s parameters."""

    def __init__(self, conv: nn.Conv2d, activation: Optional[nn.Module] = None) -> None:
        nn.Module.__init__(self)
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                     "transposed", "output_padding", "groups", "padding_mode"):
            setattr(self, name, getattr(conv, name))
        self.weight, self.bias = conv.weight, conv.bias
        self.activation = activation if activation is not None else nn.Identity()
        # String paddings ("same") and non-zero padding modes keep the plain path.
        plain = isinstance(self.padding, tuple) and self.padding_mode == "zeros"
        self._attr = _onednn_attr(self.activation) if plain else None
        self._packed: Optional[Tuple[tuple, Dict[tuple, Tensor]]] = None

    def forward(self, x: Tensor) -> Tensor:
        # oneDNN's output is channels-last whatever the input's layout: NCHW inputs keep the plain path.
        fast = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        if not (fast and _use_onednn(x, self.weight, self._attr)):
            return self.activation(self._conv_forward(x, self.weight, self.bias))
        args = list(self.padding), list(self.stride), list(self.dilation), self.groups
        return torch.ops.mkldnn._convolution_pointwise(x, self._packed_weight(x, *args), self.bias, *args, *self._attr)

    def _packed_weight(self, x: Tensor, padding, stride, dilation, groups) -> Tensor:
        # Any reordered copy gives the right result, but one made for another input shape can be
        # reordered again on every call (5x slower for some shapes), so a few shapes are kept:
        # a CPU batch runs the backbone on 2 images at a time, then maybe on 1.
        weights = (self.weight.data_ptr(), self.weight._version)
        cache = self._packed
        if cache is None or cache[0] != weights:
            cache = self._packed = weights, {}
        shape = tuple(x.shape)
        packed = cache[1].get(shape)
        if packed is None:
            if len(cache[1]) >= _SHAPES_PACKED:
                cache[1].clear()
            reorder = torch.ops.mkldnn._reorder_convolution_weight
            packed = cache[1][shape] = reorder(self.weight.detach(), padding, stride, dilation, groups, list(shape))
        return packed

    def __getstate__(self):
        # oneDNN's opaque tensors cannot be copied or pickled; the cache is rebuilt on the next call.
        state = self.__dict__.copy()
        state["_packed"] = None
        return state


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> int:
    """Folds eval-mode BatchNorms into the convolutions they follow, in place; returns how many.
    A BatchNorm is folded when it is the sibling right after a Conv2d. The convolution becomes a
    :class:`FusedConv2d` carrying the activation of timm's ``BatchNormAct2d`` (its dropout, an
    identity in eval mode, is dropped); the BatchNorm becomes an identity. Only valid for modules
    where that sibling order is the forward order, and for inference."""
    from timm.layers import BatchNormAct2d

    folded = 0
    for parent in module.modules():
        names = list(parent._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = parent._modules[conv_name], parent._modules[bn_name]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats):
                continue
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
            shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * scale
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(shift if conv.bias is None else conv.bias * scale + shift)
            activation = bn.act if isinstance(bn, BatchNormAct2d) else None
            if type(conv) is nn.Conv2d:
                parent._modules[conv_name] = FusedConv2d(conv, activation)
                parent._modules[bn_name] = nn.Identity()
            else:  # a subclass with its own forward (e.g. timm's Conv2dSame) stays as it is
                parent._modules[bn_name] = activation if activation is not None else nn.Identity()
            folded += 1
    return folded


def fuse_layers(module: nn.Module) -> int:
    """Makes every plain ``nn.Conv2d`` and ``nn.Linear`` in ``module`` a fused layer, in place;
    returns how many. An activation that follows one in an ``nn.Sequential`` moves into it (and
    becomes an identity there)."""
    fused = 0
    for parent in list(module.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            layer = parent._modules[name]
            if type(layer) not in (nn.Linear, nn.Conv2d):
                continue
            activation = None
            if isinstance(parent, nn.Sequential) and i + 1 < len(names):
                following = parent._modules[names[i + 1]]
                if not isinstance(following, nn.Identity) and _onednn_attr(following) is not None:
                    activation = following
                    parent._modules[names[i + 1]] = nn.Identity()
            parent._modules[name] = (FusedLinear if type(layer) is nn.Linear else FusedConv2d)(layer, activation)
            fused += 1
    return fused
