"""ONNX export of the s2c operators (s2c_ops/ops/decompositions.py): a module calling them exports with
``torch.onnx.export(..., dynamo=True)``, onnxruntime runs it, and it equals eager within 1e-5, shapes
dynamic; torch.export keeps the operators themselves."""
import numpy as np
import pytest
import torch

from s2c_ops.ops import gaic_roi_align, gaic_roi_align_avg, rod_align, rod_align_avg

pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install onnx onnxscript onnxruntime)")
ort = pytest.importorskip("onnxruntime", reason="these tests run the exported models in onnxruntime")

from test_ops import make_rois  # noqa: E402


class Aligns(torch.nn.Module):
    """Both operators and their Avg forms, at a non-square size and at the model's scale."""

    def forward(self, features, rois):
        return torch.cat([
            rod_align(features, rois, (5, 6), 1 / 16),
            gaic_roi_align(features, rois, (5, 6), 1 / 16),
            rod_align_avg(features, rois, (5, 6), 1 / 16),
            gaic_roi_align_avg(features, rois, (5, 6), 1 / 16),
        ], dim=1)


def _features(n, c, h, w, seed):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def session():
    Dim = torch.export.Dim
    features, rois = _features(2, 8, 16, 24, 0), make_rois(2, 9, 256, 384)
    dynamic = ({0: Dim("N"), 1: Dim("C"), 2: Dim("H", min=2), 3: Dim("W", min=2)}, {0: Dim("K")})
    program = torch.onnx.export(Aligns().eval(), (features, rois), dynamo=True, dynamic_shapes=dynamic, verbose=False)
    ops = {node.op_type for node in program.model_proto.graph.node}
    assert not any("s2c" in op for op in ops)
    return ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("n, c, h, w, k", [(2, 8, 16, 24, 9), (3, 4, 20, 13, 30), (1, 8, 2, 2, 1), (2, 3, 9, 31, 5)])
def test_onnx_equals_eager(session, n, c, h, w, k):
    features, rois = _features(n, c, h, w, k), make_rois(n, k, 16 * h, 16 * w, seed=k)
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, dict(zip(names, (features.numpy(), rois.numpy()))))[0]
    expected = Aligns()(features, rois).numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_onnx_uses_standard_operators_at_opset_18():
    program = torch.onnx.export(Aligns().eval(), (_features(1, 2, 8, 8, 0), make_rois(1, 3, 128, 128)), dynamo=True,
                                opset_version=18, verbose=False)
    assert {o.domain: o.version for o in program.model_proto.opset_import}[""] == 18
    assert all(node.domain in ("", "ai.onnx") for node in program.model_proto.graph.node)


def test_torch_export_keeps_the_operators():
    program = torch.export.export(Aligns(), (_features(1, 2, 8, 8, 0), make_rois(1, 3, 128, 128)))
    targets = {str(node.target) for node in program.run_decompositions().graph.nodes}
    assert {"s2c.rod_align.default", "s2c.gaic_roi_align.default"} <= targets
