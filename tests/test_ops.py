"""The s2c align operators, in the style of torchvision's test_ops.py: one shared tester, one
subclass per operator, each test run on both implementations: the compiled kernels (s2c_ops._C) and
the pure-PyTorch fallback (s2c_ops/ops/fallback.py), registered by the function that registers it in
place of the kernels, under a namespace of its own."""
import pytest
import torch
import torch.nn.functional as F

import s2c_ops
from conftest import golden_path
from s2c_ops.ops import _extension, fallback

import reference

FALLBACK_NAMESPACE = "s2c_fallback"
fallback.register(FALLBACK_NAMESPACE)
LOADED = torch.ops.s2c  # the compiled operators when s2c_ops._C loaded


def make_rois(num_images, num_rois, img_h, img_w, dtype=torch.float32, device="cpu", seed=0):
    """Random rois over several images, in no particular order; some boxes reach outside the image
    and some are inverted."""
    g = torch.Generator().manual_seed(seed)
    batch = torch.randint(num_images, (num_rois, 1), generator=g).to(torch.float64)
    x = torch.rand(num_rois, 2, generator=g, dtype=torch.float64) * img_w * 1.2 - img_w * 0.1
    y = torch.rand(num_rois, 2, generator=g, dtype=torch.float64) * img_h * 1.2 - img_h * 0.1
    x, _ = x.sort(dim=1)
    y, _ = y.sort(dim=1)
    rois = torch.cat([batch, x[:, :1], y[:, :1], x[:, 1:], y[:, 1:]], dim=1)
    if num_rois > 2:
        rois[1, [1, 3]] = rois[1, [3, 1]]  # one inverted box
    return rois.to(dtype=dtype, device=device)


def test_fallback_schemas_equal_compiled():
    if _extension.implementation() != "compiled":
        pytest.skip("compares the fallback with the loaded compiled operators")
    for name in fallback.SCHEMAS:
        theirs = str(getattr(getattr(torch.ops, FALLBACK_NAMESPACE), name).default._schema)
        assert theirs.replace(f"{FALLBACK_NAMESPACE}::", "s2c::") == str(getattr(LOADED, name).default._schema)


BAD_INPUTS = [
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.zeros(3, 4, device=d), 4), ValueError, "shape \\(K, 5\\)"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.zeros(5, device=d), 4), ValueError, "shape \\(K, 5\\)"),
    (lambda d: (torch.randn(2, 8, 8, device=d), torch.zeros(1, 5, device=d), 4), ValueError, "4-D"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.zeros(1, 5, device=d, dtype=torch.float64), 4), TypeError, "dtype"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.zeros(1, 5, device=d), 1), ValueError, "at least 2"),
    (lambda d: (torch.randn(1, 2, 1, 8, device=d), torch.zeros(1, 5, device=d), 4), ValueError, "at least 2x2"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d).long(), torch.zeros(1, 5, device=d).long(), 4), TypeError, "floating"),
    (lambda d: (torch.randn(2, 2, 8, 8, device=d), torch.tensor([[0.0, 1, 1, 4, 4], [2.0, 1, 1, 4, 4]], device=d), 4), IndexError, "row 1"),
    (lambda d: (torch.randn(2, 2, 8, 8, device=d), torch.tensor([[-1.0, 1, 1, 4, 4]], device=d), 4), IndexError, "out of range"),
    (lambda d: (torch.randn(2, 2, 8, 8, device=d), torch.tensor([[0.5, 1, 1, 4, 4]], device=d), 4), ValueError, "whole number"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.tensor([[0.0, float("nan"), 1, 4, 4]], device=d), 4), ValueError, "finite"),
    (lambda d: (torch.randn(1, 2, 8, 8, device=d), torch.tensor([[0.0, 1, 1, float("inf"), 4]], device=d), 4), ValueError, "finite"),
    (lambda d: (torch.randn(0, 2, 8, 8, device=d), torch.tensor([[0.0, 1, 1, 4, 4]], device=d), 4), IndexError, "out of range"),
]


class AlignTester:
    op_name: str
    fn = None
    avg_fn = None
    module = None
    reference = None
    golden: str

    @pytest.fixture(autouse=True, params=["compiled", "fallback"])
    def implementation(self, request, monkeypatch):
        """torch.ops.s2c as the operators under test, for the raw ops and the Python fronts alike."""
        if request.param == "compiled" and _extension.implementation() != "compiled":
            pytest.skip(f"the compiled operators are not loaded: {_extension.FALLBACK_REASON}")
        if request.param == "fallback":
            monkeypatch.setattr(torch.ops, "s2c", getattr(torch.ops, FALLBACK_NAMESPACE))
        return request.param

    @property
    def op(self):
        return getattr(torch.ops.s2c, self.op_name)

    # -- the official numbers -------------------------------------------------------------------
    @pytest.mark.parametrize("case", range(len(torch.load(golden_path("align_ops.pt"), weights_only=True))))
    def test_golden(self, case, device):
        c = torch.load(golden_path("align_ops.pt"), weights_only=True)[case]
        x = c["features"].to(device).requires_grad_()
        rois = c["rois"].to(device)
        out = self.op(x, rois, c["spatial_scale"], c["pooled_height"], c["pooled_width"])
        torch.testing.assert_close(out.cpu(), c[f"{self.golden}_out"], rtol=0, atol=5e-5)
        (grad,) = torch.autograd.grad(out, x, c[f"{self.golden}_grad_out"].to(device))
        torch.testing.assert_close(grad.cpu(), c[f"{self.golden}_grad_in"], rtol=0, atol=1e-4)
        key = f"{self.golden}_avg_out"
        if key in c:
            size = (c["pooled_height"] - 1, c["pooled_width"] - 1)
            avg = type(self).avg_fn(x, rois, size, c["spatial_scale"])
            torch.testing.assert_close(avg.detach().cpu(), c[key], rtol=0, atol=5e-5)

    # -- against the plain-PyTorch reference -----------------------------------------------------
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize(
        "n, c, h, w, k, ph, pw, scale",
        [(1, 8, 16, 24, 30, 10, 10, 1 / 16), (3, 4, 9, 13, 25, 7, 5, 1 / 8), (2, 3, 5, 4, 12, 16, 3, 0.5)],
    )
    def test_reference(self, device, dtype, n, c, h, w, k, ph, pw, scale):
        x = torch.randn(n, c, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        rois = make_rois(n, k, h / scale, w / scale, dtype=torch.float64)
        x_ref = x.clone().requires_grad_()
        expected = type(self).reference(x_ref, rois, scale, ph, pw)
        go = torch.randn_like(expected)
        (expected_grad,) = torch.autograd.grad(expected, x_ref, go)

        xd = x.to(device=device, dtype=dtype).requires_grad_()
        out = self.op(xd, rois.to(device=device, dtype=dtype), scale, ph, pw)
        (grad,) = torch.autograd.grad(out, xd, go.to(device=device, dtype=dtype))
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(out.double().cpu(), expected.detach(), rtol=0, atol=tol)
        torch.testing.assert_close(grad.double().cpu(), expected_grad, rtol=0, atol=tol * 10)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_low_precision(self, device, dtype):
        x = torch.randn(2, 4, 12, 16, device=device)
        rois = make_rois(2, 20, 96, 128, device=device)
        expected = self.op(x, rois, 0.125, 6, 6)
        out = self.op(x.to(dtype), rois.to(dtype), 0.125, 6, 6)
        assert out.dtype == dtype
        # Boxes rounded to `dtype` move some samples, so compare where the rounding changes nothing:
        # use rois exactly representable in both dtypes.
        rois_exact = rois.to(dtype).float()
        expected = self.op(x.to(dtype).float(), rois_exact, 0.125, 6, 6)
        atol = 1e-2 if dtype == torch.float16 else 5e-2
        torch.testing.assert_close(out.float(), expected, rtol=0, atol=atol)
        xg = x.to(dtype).requires_grad_()
        self.op(xg, rois.to(dtype), 0.125, 6, 6).sum().backward()
        assert xg.grad.dtype == dtype and torch.isfinite(xg.grad.float()).all()

    # -- autograd, torch.library and torch.compile -----------------------------------------------
    def test_gradcheck(self, device):
        x = torch.randn(2, 3, 6, 7, dtype=torch.float64, device=device, requires_grad=True)
        rois = make_rois(2, 6, 24, 28, dtype=torch.float64, device=device)
        fn = lambda t: self.op(t, rois, 0.25, 4, 5)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))

    def test_opcheck(self, device):
        x = torch.randn(2, 3, 8, 9, device=device, requires_grad=True)
        rois = make_rois(2, 7, 32, 36, device=device)
        torch.library.opcheck(self.op, (x, rois, 0.25, 4, 5))
        grad = torch.randn(7, 3, 4, 5, device=device)
        backward = getattr(torch.ops.s2c, f"_{self.op_name}_backward")
        torch.library.opcheck(backward, (grad, rois, 0.25, 4, 5, 2, 3, 8, 9))

    def test_compile(self, device):
        x = torch.randn(2, 8, 16, 24, device=device)
        rois = make_rois(2, 12, 256, 384, device=device)

        def head(t, r):
            return F.avg_pool2d(type(self).fn(t * 2 + 1, r, 10, 1 / 16), 2, 1).relu().flatten(1).sum(1)

        compiled = torch.compile(head, fullgraph=True)
        # Inductor sums each row's 648 values in its own order (another one again once deterministic
        # algorithms have been switched on in the process): float32 rounding of a sum near 700.
        torch.testing.assert_close(compiled(x, rois), head(x, rois), rtol=1e-5, atol=1e-5)

    def test_autocast(self, device):
        x = torch.randn(1, 3, 10, 10, device=device)
        rois = make_rois(1, 5, 40, 40, device=device)
        dtype = torch.bfloat16
        with torch.autocast(device, dtype=dtype):
            same = self.op(x, rois, 0.25, 5, 5)
            low = self.op(x.to(dtype), rois, 0.25, 5, 5)
        assert same.dtype == torch.float32 and low.dtype == dtype
        torch.testing.assert_close(same, self.op(x, rois, 0.25, 5, 5))
        torch.testing.assert_close(low, self.op(x.to(dtype).float(), rois, 0.25, 5, 5).to(dtype))

    # -- the Python front ----------------------------------------------------------------------
    def test_boxes_list_equals_rois(self, device):
        x = torch.randn(3, 4, 12, 12, device=device)
        boxes = [make_rois(1, n, 48, 48, device=device, seed=n)[:, 1:] for n in (3, 0, 5)]
        rois = s2c_ops.boxes_to_rois(boxes)
        assert rois[:, 0].tolist() == [0.0] * 3 + [2.0] * 5
        torch.testing.assert_close(type(self).fn(x, boxes, (4, 6), 0.25), type(self).fn(x, rois, (4, 6), 0.25))
        module = type(self).module((4, 6), 0.25)
        torch.testing.assert_close(module(x, boxes), self.op(x, rois, 0.25, 4, 6))
        assert "output_size=(4, 6)" in repr(module)

    def test_empty_rois(self, device):
        x = torch.randn(2, 3, 8, 8, device=device, requires_grad=True)
        out = self.op(x, torch.zeros(0, 5, device=device), 1.0, 4, 4)
        assert out.shape == (0, 3, 4, 4)
        out.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))

    def test_non_contiguous(self, device):
        x = torch.randn(2, 8, 3, 9, device=device).transpose(1, 3)  # (2, 9, 3, 8) view
        rois = make_rois(2, 9, 12, 32, device=device)
        wide = torch.cat([rois, torch.zeros_like(rois)], dim=1)[:, :5]
        strided = torch.zeros(9, 10, device=device)
        strided[:, ::2] = rois
        for r in (strided[:, ::2], wide):
            assert not r.is_contiguous() or r is wide
            torch.testing.assert_close(self.op(x, r, 0.25, 3, 4), self.op(x.contiguous(), rois, 0.25, 3, 4))

    def test_implementation_under_test(self, implementation):
        namespace = "s2c" if implementation == "compiled" else FALLBACK_NAMESPACE
        assert self.op.default.namespace == namespace
        python_kernel = torch._C._dispatch_has_kernel_for_dispatch_key(
            f"{namespace}::{self.op_name}", "CompositeExplicitAutograd"
        )
        assert python_kernel == (implementation == "fallback")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
    def test_fallback_equals_compiled(self, device, implementation, dtype):
        """The fallback rounds sample positions where the kernels do, so the same points are sampled,
        zeroed and dropped: equal forwards on the CPU, also for boxes whose edges lie on grid points."""
        if implementation != "fallback" or _extension.implementation() != "compiled":
            pytest.skip("compares the fallback with the loaded compiled operators")
        x = torch.randn(3, 4, 9, 13, generator=torch.Generator().manual_seed(2)).to(device, dtype)
        rois = make_rois(3, 60, 72, 104, dtype=torch.float64)
        grid = torch.arange(5, dtype=torch.float32) * torch.tensor(8.0 / 4, dtype=torch.float32)
        edges = torch.stack([grid[[0, 1, 2]], grid[[1, 1, 0]], grid[[3, 4, 2]], grid[[2, 3, 4]]], 1)
        rois[:3, 1:] = edges.double() * 8
        rois = rois.to(device, dtype)
        xg = x.clone().requires_grad_()
        out = self.op(xg, rois, 1 / 8, 7, 5)
        expected = getattr(LOADED, self.op_name)(x, rois, 1 / 8, 7, 5)
        if device == "cpu":
            assert torch.equal(out, expected)
        else:  # the CUDA kernels contract to FMAs
            torch.testing.assert_close(out, expected, rtol=0, atol=5e-5 if dtype == torch.float32 else 1e-2)
        go = torch.randn_like(out)
        backward = getattr(LOADED, f"_{self.op_name}_backward")
        torch.testing.assert_close(torch.autograd.grad(out, xg, go)[0], backward(go, rois, 1 / 8, 7, 5, *x.shape))

    def _deterministic_case(self, device):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(4, 8, 16, 24, generator=g).to(device).requires_grad_()
        rois = make_rois(4, 300, 256, 384, device=device)
        go = torch.randn(300, 8, 10, 10, generator=g).to(device)
        return lambda: torch.autograd.grad(self.op(x, rois, 1 / 16, 10, 10), x, go)[0]

    def test_repeated_backward(self, device, implementation):
        """Runs agree bit for bit, except where the sums are made in any order: CUDA atomics in the
        compiled gaic_roi_align backward, index_add_ in the fallback's backwards on CUDA. There they
        agree to rounding, and with the CPU gradient."""
        grad = self._deterministic_case(device)
        grads = [grad() for _ in range(2)]
        if device == "cuda" and (self.op_name == "gaic_roi_align" or implementation == "fallback"):
            torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-5)
            torch.testing.assert_close(grads[0].cpu(), self._deterministic_case("cpu")(), rtol=1e-6, atol=1e-5)
        else:
            assert torch.equal(grads[0], grads[1])

    def test_deterministic_algorithms(self, device, implementation):
        """Under torch.use_deterministic_algorithms(True) both operators give the same gradient on every
        run, except the compiled CUDA gaic_roi_align backward, which has none and says so."""
        grad = self._deterministic_case(device)
        was_on = torch.are_deterministic_algorithms_enabled()
        was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        try:
            torch.use_deterministic_algorithms(True)
            if device == "cuda" and self.op_name == "gaic_roi_align" and implementation == "compiled":
                with pytest.raises(RuntimeError, match="_gaic_roi_align_backward .CUDA. does not have a deterministic"):
                    grad()
                torch.use_deterministic_algorithms(True, warn_only=True)
                with pytest.warns(UserWarning, match="does not have a deterministic implementation"):
                    grad()
            else:
                assert torch.equal(grad(), grad())
        finally:
            torch.use_deterministic_algorithms(was_on, warn_only=was_warn_only)

    # -- bad input -------------------------------------------------------------------------------
    @pytest.mark.parametrize("make", [case[0] for case in BAD_INPUTS])
    def test_fallback_errors_equal_compiled(self, device, implementation, make):
        """The same exception type and message from both implementations, forward and backward."""
        if implementation != "fallback" or _extension.implementation() != "compiled":
            pytest.skip("compares the fallback with the loaded compiled operators")
        x, rois, size = make(device)
        grad = torch.zeros(max(1, rois.shape[0]), 2, size, size, device=device, dtype=x.dtype)
        calls = [(self.op_name, (x, rois, 1.0, size, size)),
                 (f"_{self.op_name}_backward", (grad, rois, 1.0, size, size, *x.shape[:4]))]
        if x.dim() != 4:
            calls = calls[:1]
        for name, args in calls:
            errors = []
            for ops in (torch.ops.s2c, LOADED):
                with pytest.raises(Exception) as caught:
                    getattr(ops, name)(*args)
                errors.append((caught.type, str(caught.value)))
            assert errors[0] == errors[1]

    @pytest.mark.parametrize("make, error, match", BAD_INPUTS)
    def test_bad_input(self, device, make, error, match):
        x, rois, size = make(device)
        with pytest.raises(error, match=match):
            self.op(x, rois, 1.0, size, size)
        if rois.dim() == 2 and rois.shape[1] == 5 and x.dim() == 4 and x.is_floating_point() and size > 1:
            grad = torch.zeros(rois.shape[0], x.shape[1], size, size, device=device, dtype=x.dtype)
            backward = getattr(torch.ops.s2c, f"_{self.op_name}_backward")
            with pytest.raises(error, match=match):
                backward(grad, rois, 1.0, size, size, *x.shape)
        if device == "cuda":  # no sticky CUDA error: the device still works
            ok = self.op(torch.ones(1, 1, 4, 4, device=device), torch.tensor([[0.0, 0, 0, 1, 1]], device=device), 1.0, 2, 2)
            assert torch.cuda.synchronize() is None and ok.shape == (1, 1, 2, 2)

    @pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
    def test_bad_spatial_scale(self, device, scale):
        with pytest.raises(ValueError, match="spatial_scale"):
            self.op(torch.randn(1, 2, 8, 8, device=device), torch.zeros(1, 5, device=device), scale, 3, 3)

    def test_bad_backward_grad_shape(self, device):
        backward = getattr(torch.ops.s2c, f"_{self.op_name}_backward")
        with pytest.raises(ValueError, match="grad must have shape"):
            backward(torch.zeros(2, 3, 4, 4, device=device), torch.zeros(2, 5, device=device), 1.0, 4, 5, 1, 3, 8, 8)

    def test_bad_boxes_front(self, device):
        x = torch.randn(1, 2, 8, 8, device=device)
        with pytest.raises(ValueError, match=r"boxes\[1\] must have shape \(L, 4\)"):
            type(self).fn(x, [torch.zeros(1, 4, device=device), torch.zeros(1, 5, device=device)], 3)
        with pytest.raises(TypeError, match="Tensor\\[K, 5\\] or a list"):
            type(self).fn(x, "boxes", 3)
        with pytest.raises(ValueError, match="output_size"):
            type(self).fn(x, torch.zeros(1, 5, device=device), (3, 3, 3))

    def test_meta_and_another_device(self):
        """One tensor on meta sends the call to the fake kernel: it checks devices too (it returned
        uninitialised memory on the CPU)."""
        for x, rois in ((torch.randn(1, 2, 8, 8), torch.zeros(1, 5, device="meta")),
                        (torch.randn(1, 2, 8, 8, device="meta"), torch.zeros(1, 5))):
            with pytest.raises(RuntimeError, match="same device"):
                self.op(x, rois, 1.0, 3, 3)
        assert self.op(torch.randn(1, 2, 8, 8, device="meta"), torch.zeros(1, 5, device="meta"), 1.0, 3, 3).shape == (1, 2, 3, 3)

    def test_scale_past_float32_range(self, device):
        """The kernels and the fallback (the ONNX decomposition) both take it (boxes at infinity)."""
        out = self.op(torch.randn(1, 1, 4, 4, device=device), torch.tensor([[0.0, 0, 0, 1, 1]], device=device), 1e308, 2, 2)
        assert out.shape == (1, 1, 2, 2)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_mixed_devices(self):
        with pytest.raises(RuntimeError, match="same device"):
            self.op(torch.randn(1, 2, 8, 8, device="cuda"), torch.zeros(1, 5), 1.0, 3, 3)
        with pytest.raises(RuntimeError, match="same device"):
            self.op(torch.randn(1, 2, 8, 8), torch.zeros(1, 5, device="cuda"), 1.0, 3, 3)
        # The CUDA context is still usable afterwards (no sticky error).
        assert self.op(torch.randn(1, 2, 8, 8, device="cuda"), torch.zeros(1, 5, device="cuda"), 1.0, 3, 3).isfinite().all()

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("grouped", [False, True], ids=["shuffled", "grouped"])
    def test_cuda_matches_cpu(self, dtype, grouped):
        x = torch.randn(4, 8, 16, 24, dtype=dtype, requires_grad=True)
        rois = make_rois(4, 200, 256, 384, dtype=dtype, seed=3)
        if grouped:  # ROIs in batch order take the CUDA backward's path without a sort
            rois = rois[rois[:, 0].argsort(stable=True)]
        go = torch.randn(200, 8, 10, 10, dtype=dtype)
        out = self.op(x, rois, 1 / 16, 10, 10)
        (grad,) = torch.autograd.grad(out, x, go)
        xc = x.detach().cuda().requires_grad_()
        out_c = self.op(xc, rois.cuda(), 1 / 16, 10, 10)
        (grad_c,) = torch.autograd.grad(out_c, xc, go.cuda())
        # float32: the GPU contracts to FMAs, which moves extrapolated border samples by a few ulps.
        tol = 5e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(out_c.cpu(), out, rtol=0, atol=tol)
        torch.testing.assert_close(grad_c.cpu(), grad, rtol=0, atol=tol * 10)


    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_graph(self):
        """Captured into a CUDA graph (value checks are skipped there), replays equal eager."""
        x = torch.randn(4, 8, 16, 24, device="cuda")
        rois = make_rois(4, 100, 256, 384, device="cuda")
        expected = self.op(x, rois, 1 / 16, 10, 10)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.op(x, rois, 1 / 16, 10, 10)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.op(x, rois, 1 / 16, 10, 10)
        graph.replay()
        torch.testing.assert_close(out, expected, rtol=0, atol=0)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_many_rois(self):
        """More ROIs than one grid dimension holds (65,535)."""
        x = torch.randn(3, 1, 5, 6, dtype=torch.float64, requires_grad=True)
        rois = make_rois(3, 70_000, 20, 24, dtype=torch.float64, seed=4)
        out = self.op(x, rois, 0.25, 3, 2)
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
        xc = x.detach().cuda().requires_grad_()
        out_c = self.op(xc, rois.cuda(), 0.25, 3, 2)
        (grad_c,) = torch.autograd.grad(out_c, xc, torch.ones_like(out_c))
        torch.testing.assert_close(out_c.cpu(), out, rtol=0, atol=1e-12)
        torch.testing.assert_close(grad_c.cpu(), grad, rtol=1e-10, atol=1e-9)


class TestRoDAlign(AlignTester):
    op_name = "rod_align"
    fn = staticmethod(s2c_ops.rod_align)
    avg_fn = staticmethod(s2c_ops.rod_align_avg)
    module = s2c_ops.RoDAlign
    reference = staticmethod(reference.rod_align)
    golden = "rod"

    def test_grid_ignores_roi(self, device):
        """All ROIs of an image sample the same points: outputs differ only by the zeroed block."""
        x = torch.randn(1, 2, 10, 12, device=device)
        rois = make_rois(1, 8, 40, 48, device=device)
        out = self.op(x, rois, 0.25, 6, 7)
        nothing_discarded = self.op(x, torch.tensor([[0.0, -100, -100, -99, -99]], device=device), 0.25, 6, 7)
        kept = out != 0
        assert kept.float().mean() > 0.5
        assert torch.equal(out[kept], nothing_discarded.expand_as(out)[kept])


class TestGaicRoIAlign(AlignTester):
    op_name = "gaic_roi_align"
    fn = staticmethod(s2c_ops.gaic_roi_align)
    avg_fn = staticmethod(s2c_ops.gaic_roi_align_avg)
    module = s2c_ops.GaicRoIAlign
    reference = staticmethod(reference.roi_align)
    golden = "roi"

    def test_matches_torchvision_inside(self, device):
        """Interior samples equal torchvision's roi_align (aligned=True, sampling_ratio=1) on boxes
        moved to its convention: point i at y1 + i * step, step = (y2 - y1 + 1) / (n - 1)."""
        from torchvision.ops import roi_align as tv_roi_align

        x = torch.randn(1, 3, 20, 20, device=device, dtype=torch.float64)
        rois = torch.tensor([[0, 3.2, 4.1, 12.7, 10.3], [0, 1.5, 2.5, 9.0, 14.0]], device=device, dtype=torch.float64)
        n = 6
        ours = self.op(x, rois, 1.0, n, n)
        step = (rois[:, 3:] - rois[:, 1:3] + 1) / (n - 1)
        tv_boxes = torch.cat([rois[:, :1], rois[:, 1:3] - step / 2 + 0.5, rois[:, 1:3] + step * (n - 0.5) + 0.5], 1)
        theirs = tv_roi_align(x, tv_boxes, n, 1.0, sampling_ratio=1, aligned=True)
        torch.testing.assert_close(ours[..., :-1, :-1], theirs[..., :-1, :-1])
