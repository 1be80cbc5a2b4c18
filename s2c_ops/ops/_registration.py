"""Fake (meta) kernels, autograd and vmap of the s2c operators, whichever implementation defines them: the
compiled library (csrc/ops.cpp) or the pure-PyTorch one (fallback.py)."""
from typing import Callable, Dict, Optional, Type

import torch
from torch import Tensor
from torch._C._functorch import TransformType, peek_interpreter_stack

ALIGN_OPS = ("rod_align", "gaic_roi_align")


def _check_ranks(op: str, features: Tensor, rois: Tensor) -> None:
    torch._check(features.dim() == 4, lambda: f"s2c::{op}: expected a 4-D tensor, got {features.dim()}-D")
    torch._check(
        rois.dim() == 2 and rois.shape[1] == 5,
        lambda: f"s2c::{op}: rois must have shape (K, 5), got {tuple(rois.shape)}",
    )
    # One tensor on the meta device sends the call here even when the other is not (it gave uninitialised
    # memory on the other's device).
    torch._check(
        features.device == rois.device,
        lambda: f"s2c::{op}: input and rois must be on the same device, got {features.device} and {rois.device}",
    )


def _register(namespace: str, name: str) -> None:
    @torch.library.register_fake(f"{namespace}::{name}")
    def _forward_fake(input, rois, spatial_scale, pooled_height, pooled_width):
        _check_ranks(name, input, rois)
        return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))

    @torch.library.register_fake(f"{namespace}::_{name}_backward")
    def _backward_fake(grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width):
        _check_ranks(f"_{name}_backward", grad, rois)
        return grad.new_empty((batch_size, channels, height, width))

    def with_input_shape(x, args):  # the backward's (batch_size, channels, height, width) after the forward's args
        return (*args, *x.shape)

    forward_name, backward_name = f"{namespace}::{name}", f"{namespace}::_{name}_backward"
    _register_linear(forward_name, adjoint=backward_name, adjoint_args=with_input_shape, batch_arg=None)
    _register_linear(backward_name, adjoint=forward_name, adjoint_args=lambda g, args: args[:3], batch_arg=3)


# The libraries that hold this module's Autograd kernels (a library's registrations last as long as it does).
_LIBRARIES: Dict[str, torch.library.Library] = {}
#: "namespace::name" -> the autograd.Function of that operator, for the Python front under torch.func.
FUNCTIONS: Dict[str, Type[torch.autograd.Function]] = {}


def _stacked(apply: Callable, batch_arg: Optional[int], size: int, in_dims, x: Tensor, rois: Tensor, *args):
    """A vmap rule: the mapped batches as one call, image n of batch v becoming image v * images + n."""
    x = x.movedim(in_dims[0], 0) if in_dims[0] is not None else x.expand(size, *x.shape)
    rois = rois.movedim(in_dims[1], 0) if in_dims[1] is not None else rois.expand(size, *rois.shape)
    images = x.shape[1] if batch_arg is None else args[batch_arg]
    offset = torch.arange(size, device=rois.device, dtype=rois.dtype).view(size, 1, 1) * images
    rois = torch.cat([rois[..., :1] + offset, rois[..., 1:]], dim=-1)
    if batch_arg is not None:
        args = (*args[:batch_arg], images * size, *args[batch_arg + 1:])
    out = apply(x.flatten(0, 1), rois.flatten(0, 1), *args)
    return out.view(size, -1, *out.shape[1:]), 0


def _register_linear(qualname: str, adjoint: str, adjoint_args: Callable, batch_arg: Optional[int]) -> None:
    """Autograd of the operator ``qualname(x, rois, *args)`` ("namespace::name"), linear in ``x`` (rois and
    the rest take no gradient), whose adjoint is the operator ``adjoint(g, rois, *adjoint_args(x, args))``:
    the adjoint is its backward and the operator itself its forward-mode derivative.

    The operator supports reverse mode (double backward too), forward mode (``torch.autograd.forward_ad``)
    and ``torch.func.vmap`` (one call over the stacked batches; ``batch_arg`` is the index in ``args`` of the
    number of images, or None when it is ``x``'s first dimension). ``torch.func.grad`` / ``jvp`` (and what is
    built on them) cannot reach an operator's own autograd through the dispatcher: the operator raises a
    clear error there, and the Python front (:mod:`s2c_ops.ops.align`) applies the same
    ``autograd.Function`` above the dispatcher, where every transform works. (An Autograd kernel of its own:
    ``torch.library.register_autograd`` drops forward-mode tangents without a word.)"""
    namespace, name = qualname.split("::")
    op = getattr(getattr(torch.ops, namespace), name).default

    class Linear(torch.autograd.Function):
        @staticmethod
        def forward(x, rois, *args):
            with torch._C._AutoDispatchBelowAutograd():
                return op(x, rois, *args)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, rois, *args = inputs
            ctx.save_for_backward(rois)
            ctx.save_for_forward(rois)
            ctx.args = tuple(args)
            ctx.adjoint_args = tuple(adjoint_args(x, args))

        @staticmethod
        def backward(ctx, grad):
            (rois,) = ctx.saved_tensors
            # The adjoint's Function, not its operator: a transform around this one (grad of grad) goes on.
            return (FUNCTIONS[adjoint].apply(grad, rois, *ctx.adjoint_args), None) + (None,) * len(ctx.args)

        @staticmethod
        def jvp(ctx, tangent, *tangents):
            (rois,) = ctx.saved_tensors
            return Linear.apply(tangent, rois, *ctx.args)

        @staticmethod
        def vmap(info, in_dims, x, rois, *args):
            return _stacked(Linear.apply, batch_arg, info.batch_size, in_dims, x, rois, *args)

    def autograd_kernel(x, rois, *args):
        interpreter = peek_interpreter_stack()
        if interpreter is None:
            return Linear.apply(x, rois, *args)
        if interpreter.key() in (TransformType.Grad, TransformType.Jvp):
            raise RuntimeError(f"{qualname} under torch.func.grad, jvp or a transform built on them "
                               "(jacrev, jacfwd, hessian): call it through s2c_ops.ops (rod_align, gaic_roi_align "
                               "and their modules), which supports every torch.func transform")
        with torch._C._AutoDispatchBelowAutograd():  # vmap: the rule below
            return op(x, rois, *args)

    def vmap_rule(info, in_dims, x, rois, *args):
        return _stacked(op, batch_arg, info.batch_size, in_dims, x, rois, *args)

    if namespace not in _LIBRARIES:
        _LIBRARIES[namespace] = torch.library.Library(namespace, "IMPL")
    _LIBRARIES[namespace].impl(name, autograd_kernel, "Autograd")
    torch.library.register_vmap(qualname, vmap_rule)
    FUNCTIONS[qualname] = Linear


def register(namespace: str) -> None:
    """Fake kernels and autograd of the align operators defined in `namespace`."""
    for name in ALIGN_OPS:
        _register(namespace, name)
