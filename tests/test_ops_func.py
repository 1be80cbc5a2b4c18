"""The operators under forward-mode AD and torch.func: right against finite differences, or a clear error;
never a silent zero (a tangent dropped, as register_autograd's generated function does)."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import grad, jacfwd, jacrev, jvp, vmap

from s2c_ops.ops import gaic_roi_align, rod_align

FRONTS = [rod_align, gaic_roi_align]


def case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=g)
    rois = torch.tensor([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.5, 2.0, 7.0, 7.5], [0, 3.0, 0.0, 7.0, 7.0]],
                        dtype=torch.float64)
    return x, rois, torch.randn(x.shape, dtype=torch.float64, generator=g)


def raw(front):
    return getattr(torch.ops.s2c, front.__name__)


def central_difference(f, x, t, eps=1e-6):
    return (f(x + eps * t) - f(x - eps * t)) / (2 * eps)


@pytest.mark.parametrize("front", FRONTS)
def test_jvp_of_the_front_matches_finite_differences(front):
    x, rois, t = case()
    f = lambda x: front(x, rois, 3, 0.5)  # noqa: E731
    out, tangent = jvp(f, (x,), (t,))
    assert torch.equal(out, f(x))
    assert tangent.abs().max() > 0.1 and torch.allclose(tangent, central_difference(f, x, t), atol=1e-8)
    assert torch.allclose(jacfwd(f)(x), jacrev(f)(x), atol=1e-12)


@pytest.mark.parametrize("front", FRONTS)
def test_grad_and_grad_of_grad_of_the_front(front):
    x, rois, t = case()
    loss = lambda x: (front(x, rois, 3, 0.5) ** 3).sum()  # noqa: E731
    leaf = x.clone().requires_grad_()
    loss(leaf).backward()
    assert torch.allclose(grad(loss)(x), leaf.grad, atol=1e-12)
    # the directional derivative of the gradient, against finite differences of the gradient
    hvp = jvp(grad(loss), (x,), (t,))[1]
    assert torch.allclose(hvp, central_difference(grad(loss), x, t), atol=1e-6)
    assert grad(lambda x: grad(loss)(x).sum())(x).shape == x.shape


@pytest.mark.parametrize("front", FRONTS)
def test_forward_ad_of_the_operator(front):
    x, rois, t = case()
    f = lambda x: raw(front)(x, rois, 0.5, 3, 3)  # noqa: E731
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(f(fwAD.make_dual(x, t))).tangent
    assert tangent is not None and torch.allclose(tangent, central_difference(f, x, t), atol=1e-8)
    assert torch.autograd.gradcheck(f, (x.clone().requires_grad_(),), check_forward_ad=True)


@pytest.mark.parametrize("front", FRONTS)
def test_operator_under_grad_or_jvp_is_a_clear_error(front):
    x, rois, t = case()
    f = lambda x: raw(front)(x, rois, 0.5, 3, 3)  # noqa: E731
    for transform in (lambda: jvp(f, (x,), (t,)), lambda: grad(lambda x: f(x).sum())(x)):
        with pytest.raises(RuntimeError, match="call it through s2c_ops.ops"):
            transform()


@pytest.mark.parametrize("front", FRONTS)
def test_vmap_of_operator_and_front(front):
    x, rois, _ = case()
    xs = torch.randn(4, *x.shape, dtype=torch.float64)
    moved = rois.expand(4, *rois.shape).clone()
    moved[:, :, 3] += torch.arange(4, dtype=torch.float64).view(4, 1) * 0.3
    op = raw(front)
    for f in (lambda x: front(x, rois, 3, 0.5), lambda x: op(x, rois, 0.5, 3, 3)):
        assert torch.equal(vmap(f)(xs), torch.stack([f(a) for a in xs]))
    both = vmap(lambda a, r: op(a, r, 0.5, 3, 3))(xs, moved)
    assert torch.equal(both, torch.stack([op(a, r, 0.5, 3, 3) for a, r in zip(xs, moved)]))
    per_sample = vmap(grad(lambda a: (front(a, rois, 3, 0.5) ** 2).sum()))(xs)
    assert torch.allclose(per_sample, torch.stack([grad(lambda a: (front(a, rois, 3, 0.5) ** 2).sum())(a)
                                                   for a in xs]))
