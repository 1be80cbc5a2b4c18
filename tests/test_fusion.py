"""Inference fusion (s2c_ops.models.fusion): fused layers compute their plain modules' function, take
oneDNN's fused operators on the CPU, and fall back wherever those do not apply."""
import copy
import pickle

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from s2c_ops.models.fusion import FusedConv2d, FusedLinear, fold_batchnorm, fuse_layers, onednn_works
from s2c_ops.models.s2cnet import S2CNet

needs_onednn = pytest.mark.skipif(not onednn_works(), reason="this torch build has no working oneDNN fused operators")

ACTIVATIONS = [None, nn.ReLU(), nn.ReLU6(), nn.Hardtanh(-1.0, 2.0), nn.SiLU(), nn.GELU(), nn.GELU("tanh")]


class OpsCalled(TorchDispatchMode):
    """Records the names of the operators that run."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


def run(module, x):
    with torch.no_grad(), OpsCalled() as ops:
        y = module(x)
    return y, ops.names


def plain(layer, activation):
    return nn.Sequential(layer, activation if activation is not None else nn.Identity())


@needs_onednn
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
@pytest.mark.parametrize("shape", [(7, 12), (3, 5, 12), (2, 3, 4, 12), (0, 12)])
def test_linear_matches_plain_module(activation, shape):
    torch.manual_seed(0)
    linear = nn.Linear(12, 9)
    fused = FusedLinear(linear, activation)
    x = torch.randn(shape) * 3
    y, names = run(fused, x)
    torch.testing.assert_close(y, plain(linear, activation)(x), rtol=1e-5, atol=1e-5)
    assert names == ["_linear_pointwise"]


@needs_onednn
def test_linear_reads_strided_inputs():
    linear = nn.Linear(12, 9, bias=False)
    x = torch.randn(12, 20).t()
    y, names = run(FusedLinear(linear), x)
    torch.testing.assert_close(y, linear(x), rtol=1e-5, atol=1e-5)
    assert names == ["_linear_pointwise"]
    vector = torch.randn(12)  # one vector: the plain path, as F.linear takes it
    torch.testing.assert_close(run(FusedLinear(linear), vector)[0], linear(vector))


CONVS = [
    dict(in_channels=8, out_channels=16, kernel_size=1),
    dict(in_channels=8, out_channels=16, kernel_size=3, stride=2, padding=1),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),  # depthwise
    dict(in_channels=8, out_channels=6, kernel_size=(3, 5), padding=(0, 2), dilation=2, bias=False),
]


@needs_onednn
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
@pytest.mark.parametrize("spec", CONVS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format], ids=["nhwc", "nchw"])
def test_conv_matches_plain_module(activation, spec, memory_format):
    torch.manual_seed(0)
    conv = nn.Conv2d(**spec).to(memory_format=memory_format)
    fused = FusedConv2d(conv, activation)
    for shape in [(1, 8, 19, 23), (3, 8, 12, 40)]:  # the reordered weights follow the input shape
        x = torch.randn(shape).contiguous(memory_format=memory_format)
        y, names = run(fused, x)
        expected = plain(conv, activation)(x)
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
        assert y.stride() == expected.stride()  # NCHW inputs keep the plain path and its layout
        onednn = memory_format == torch.channels_last
        assert ("_convolution_pointwise" in names) == onednn and ("convolution" in names) != onednn


@needs_onednn
def test_conv_reorders_weights_once_per_shape_and_after_changes():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    fused = FusedConv2d(conv, nn.ReLU())
    x = torch.randn(1, 4, 10, 10).contiguous(memory_format=torch.channels_last)
    assert "_reorder_convolution_weight" in run(fused, x)[1]
    assert "_reorder_convolution_weight" not in run(fused, x)[1]
    seen = {tuple(x.shape)}
    shapes = [(2, 4, 10, 10), (1, 4, 10, 10), (1, 4, 12, 9)]
    for shape in shapes + shapes:  # alternating shapes, e.g. a CPU batch split into 2 + 2 + 1 images
        reorders = run(fused, torch.randn(shape).contiguous(memory_format=torch.channels_last))[1]
        assert ("_reorder_convolution_weight" in reorders) == (shape not in seen)
        seen.add(shape)
    with torch.no_grad():
        conv.weight.mul_(-2)  # in place, as load_state_dict does: the cache must not go stale
    y, names = run(fused, x)
    assert "_reorder_convolution_weight" in names
    torch.testing.assert_close(y, torch.relu(conv(x)), rtol=1e-5, atol=1e-5)


def test_fallbacks_compute_the_same_function():
    """Autograd (gradients flow), autocast and other dtypes take the plain modules."""
    conv, linear = nn.Conv2d(4, 6, 3, padding=1), nn.Linear(6, 5)
    net = nn.Sequential(FusedConv2d(conv, nn.ReLU6()), nn.Flatten(2), Transpose(), FusedLinear(linear, nn.GELU()))
    reference = nn.Sequential(conv, nn.ReLU6(), nn.Flatten(2), Transpose(), linear, nn.GELU())
    x = torch.randn(2, 4, 7, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    net(x).sum().backward()
    grads = x.grad.clone(), conv.weight.grad.clone(), linear.weight.grad.clone()
    x.grad = conv.weight.grad = linear.weight.grad = None
    reference(x).sum().backward()
    for got, expected in zip(grads, (x.grad, conv.weight.grad, linear.weight.grad)):
        torch.testing.assert_close(got, expected)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x).dtype == reference(x).dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(copy.deepcopy(net).double()(x.double()), reference.double()(x.double()))


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


@needs_onednn
def test_copies_and_pickles_after_use():
    """The cached oneDNN weights (opaque tensors) are not copied: copies rebuild them."""
    fused = FusedConv2d(nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.randn(1, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = fused(x)
        for clone in (copy.deepcopy(fused), pickle.loads(pickle.dumps(fused))):
            torch.testing.assert_close(clone(x), expected)


def test_fuse_layers_moves_activations_only_inside_sequential():
    class Block(nn.Module):  # the activation is a sibling, but forward applies it elsewhere
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(x) + self.fc(x)

    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4), nn.Tanh(), Block())
    reference = copy.deepcopy(model)
    assert fuse_layers(model) == 3
    assert isinstance(model[0], FusedLinear) and isinstance(model[0].activation, nn.GELU)
    assert isinstance(model[1], nn.Identity)
    assert isinstance(model[3], nn.Tanh)  # no oneDNN post-op: stays a module of its own
    assert isinstance(model[4].act, nn.ReLU) and isinstance(model[4].fc.activation, nn.Identity)
    x = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_keeps_conv_subclasses():
    """A convolution subclass with its own forward keeps it; the BatchNorm is still folded."""
    from timm.layers import BatchNormAct2d, Conv2dSame

    model = nn.Sequential(Conv2dSame(3, 4, 3, stride=2), BatchNormAct2d(4, act_layer=nn.ReLU)).eval()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == 1
        assert type(model[0]) is Conv2dSame and isinstance(model[1], nn.ReLU)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_fused_s2cnet_runs_onednn_on_the_cpu():
    model = S2CNet("GAICv1").eval()
    fused = model.fused()
    assert not any(type(m) in (nn.Linear, nn.Conv2d) for m in fused.modules())
    assert any(type(m) is nn.Linear for m in model.modules())  # the original is untouched
    images = torch.randn(1, 3, 64, 96)
    crops = torch.tensor([[0.0, 0.0, 64.0, 48.0], [8.0, 4.0, 96.0, 64.0]])
    objects = torch.tensor([[10.0, 10.0, 40.0, 30.0]] * 10)
    with torch.no_grad(), OpsCalled() as ops:
        scores = fused(images, [crops], [objects])
    assert {"_linear_pointwise", "_convolution_pointwise"} <= set(ops.names)
    assert not {"convolution", "hardtanh", "gelu"} & set(ops.names)
    assert ops.names.count("addmm") == 1  # the GAICv1 head's single output, a Linear subclass
    assert ops.names.count("clamp") == 1  # the object boxes clamped into the image, no ReLU6
    with torch.no_grad():
        torch.testing.assert_close(scores, model(images, [crops], [objects]), rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_on_cpu_then_moved_to_cuda():
    """As `s2c crop` does: fuse, run on the CPU (filling the caches), move to the GPU."""
    model = S2CNet("GAICv1").eval()
    fused = model.fused()
    images = torch.randn(1, 3, 64, 96)
    crops = [torch.tensor([[0.0, 0.0, 64.0, 48.0]])]
    objects = [torch.tensor([[10.0, 10.0, 40.0, 30.0]] * 10)]
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected = fused(images, crops, objects)
        fused.cuda()
        got = fused(images.cuda(), [c.cuda() for c in crops], [o.cuda() for o in objects]).cpu()
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
        torch.testing.assert_close(fused.cpu()(images, crops, objects), expected)
