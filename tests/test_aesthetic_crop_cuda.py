"""AestheticCrop on a GPU: its forward never makes the host wait (CUDA's sync debug mode set to "error"),
it can be captured in a CUDA graph, and the device's labelling and NMS give the CPU's results. Skipped
without CUDA."""
import pytest
import torch

from s2c_kornia import AestheticCrop
from s2c_ops.cropping.proposals import label_components
from s2c_ops.cropping.proposals.nms import greedy_nms
from s2c_ops.models.prior import GeometryPrior

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

MODELS = {"prior": GeometryPrior.default, "default": lambda: None}


def images(seed=0, batch=8):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 9, 13, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(256, 384), mode="bicubic").clamp(0, 1)
    return x.cuda()


@pytest.mark.parametrize("model", list(MODELS))
def test_forward_without_synchronisation(model):
    aug = AestheticCrop("4:3", size=(192, 256), model=MODELS[model]())
    x = images()
    expected = aug(x)  # the first call makes the scorer, the caches and the constants
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = aug(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("model", list(MODELS))
def test_cuda_graph(model):
    aug = AestheticCrop("4:3", size=(192, 256), model=MODELS[model]())
    static = images(seed=0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            aug(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = aug(static)
    fresh = images(seed=1)
    static.copy_(fresh)
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, aug(fresh), rtol=0, atol=0)


def test_labels_and_nms_match_the_cpu():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 23, 31, generator=g) > 0.5
    assert torch.equal(label_components(masks.cuda()).cpu(), label_components(masks))
    xy = torch.rand(4, 50, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(4, 50, 2, generator=g) * 50 + 1], -1)
    valid = torch.rand(4, 50, generator=g) > 0.2
    for threshold in (0.3, 0.5):
        cpu = greedy_nms(boxes, valid, threshold, 20)
        gpu = greedy_nms(boxes.cuda(), valid.cuda(), threshold, 20)
        assert torch.equal(gpu[1].cpu(), cpu[1])
        assert torch.equal(gpu[0].cpu()[cpu[1]], cpu[0][cpu[1]])


def test_pixel_check_on_request():
    """On a GPU the [0, 1] check waits for the device, so it runs only with validate=True."""
    x = images() * 255
    assert AestheticCrop("4:3", size=(192, 256), model=GeometryPrior.default())(x).shape == (8, 3, 192, 256)
    with pytest.raises(ValueError, match="divide 8-bit values"):
        AestheticCrop("4:3", size=(192, 256), model=GeometryPrior.default(), validate=True)(x)
