"""Fake (meta) kernels and autograd of the s2c operators, whichever implementation defines them: the
compiled library (csrc/ops.cpp) or the pure-PyTorch one (fallback.py)."""
import torch
from torch import Tensor

ALIGN_OPS = ("rod_align", "gaic_roi_align")


def _check_ranks(op: str, features: Tensor, rois: Tensor) -> None:
    torch._check(features.dim() == 4, lambda: f"s2c::{op}: expected a 4-D tensor, got {features.dim()}-D")
    torch._check(
        rois.dim() == 2 and rois.shape[1] == 5,
        lambda: f"s2c::{op}: rois must have shape (K, 5), got {tuple(rois.shape)}",
    )


def _register(namespace: str, name: str) -> None:
    ops = getattr(torch.ops, namespace)
    forward = getattr(ops, name)
    backward = getattr(ops, f"_{name}_backward")

    @torch.library.register_fake(f"{namespace}::{name}")
    def _forward_fake(input, rois, spatial_scale, pooled_height, pooled_width):
        _check_ranks(name, input, rois)
        return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))

    @torch.library.register_fake(f"{namespace}::_{name}_backward")
    def _backward_fake(grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width):
        _check_ranks(f"_{name}_backward", grad, rois)
        return grad.new_empty((batch_size, channels, height, width))

    def forward_setup(ctx, inputs, output):
        input, rois, spatial_scale, pooled_height, pooled_width = inputs
        ctx.save_for_backward(rois)
        ctx.args = (spatial_scale, pooled_height, pooled_width, *input.shape)

    def forward_backward(ctx, grad):
        (rois,) = ctx.saved_tensors
        return backward(grad, rois, *ctx.args), None, None, None, None

    torch.library.register_autograd(f"{namespace}::{name}", forward_backward, setup_context=forward_setup)

    # The backward is linear in `grad`, and its adjoint is the forward: that gives double backward.
    def backward_setup(ctx, inputs, output):
        grad, rois, spatial_scale, pooled_height, pooled_width = inputs[:5]
        ctx.save_for_backward(rois)
        ctx.args = (spatial_scale, pooled_height, pooled_width)

    def backward_backward(ctx, grad_grad_input):
        (rois,) = ctx.saved_tensors
        return (forward(grad_grad_input, rois, *ctx.args),) + (None,) * 8

    torch.library.register_autograd(
        f"{namespace}::_{name}_backward", backward_backward, setup_context=backward_setup
    )


def register(namespace: str) -> None:
    """Fake kernels and autograd of the align operators defined in `namespace`."""
    for name in ALIGN_OPS:
        _register(namespace, name)
