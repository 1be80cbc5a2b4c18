"""The s2c operators as standard ATen operators, for ONNX export.

``torch.onnx.export(..., dynamo=True)`` decomposes every operator it has no ONNX function for with the
entries of ``torch._decomp.decomposition_table``; the entries registered here (the pure-PyTorch operators of
fallback.py without their value checks) let it export a module calling ``rod_align`` or ``gaic_roi_align``
with standard ONNX operators (Gather, Where, Floor, ...; opset 18, torch.onnx's default), shapes dynamic
or not. ``torch.export``, ``torch.compile`` and AOTInductor keep the operators and their kernels: their own
decomposition tables are chosen lists that do not read this table.

The checks of values (finite rois, batch indices in range) cannot run inside an exported graph: an ONNX
model gives NaN for a roi whose batch index is out of range, as the CUDA kernels do when their checks are
skipped.
"""
import torch

from . import fallback

_REGISTERED = set()


def register(namespace: str = "s2c") -> None:
    """Registers the decompositions of ``namespace``'s forward operators (once)."""
    if namespace in _REGISTERED:
        return
    ops = getattr(torch.ops, namespace)
    for name, body in (("rod_align", fallback.rod_align_unchecked),
                       ("gaic_roi_align", fallback.gaic_roi_align_unchecked)):
        torch._decomp.register_decomposition(getattr(ops, name).default)(body)
    _REGISTERED.add(namespace)


register("s2c")
