"""A downstream project's use of an installed s2cnet, run from outside the checkout (CI runs it against
the built wheel in a fresh environment; tests/test_install.py against the development install).

    python downstream_smoke.py [--expect compiled|fallback] [--installed] [--cuda-kernels]

Checks: both operators forward and backward; the operator inside the project's own model under
torch.compile, with gradients; Cropper on a demo photo; AestheticCrop in a DataLoader with worker
processes and in an AugmentationSequential with boxes; `s2c crop --help`.
"""
import argparse
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

import s2c_ops


class CropHead(nn.Module):
    """The downstream project's own model: a conv stem, RoDAlign and RoIAlign features, a linear score."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.score = nn.Linear(2 * 8 * 4 * 4, 1)

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        features = self.stem(images).relu()
        rod = s2c_ops.rod_align_avg(features, rois, 4, 1 / 4)
        roi = s2c_ops.gaic_roi_align_avg(features, rois, 4, 1 / 4)
        return self.score(torch.cat([rod, roi], 1).flatten(1)).squeeze(1)


def check_operators() -> None:
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 2.0, 3.0, 15.0, 20.0], [1, 0.0, 0.0, 27.0, 23.0], [1, 5.0, 1.0, 9.0, 30.0]],
                        dtype=torch.float64)
    for op in (torch.ops.s2c.rod_align, torch.ops.s2c.gaic_roi_align):
        out = op(x, rois, 0.25, 4, 5)
        assert out.shape == (3, 3, 4, 5)
        assert torch.autograd.gradcheck(lambda t: op(t, rois, 0.25, 4, 5), (x,))


def check_compiled_model() -> None:
    torch.manual_seed(0)
    model = CropHead()
    images = torch.rand(2, 3, 64, 96)
    rois = torch.tensor([[0, 4.0, 4.0, 60.0, 40.0], [0, 10.0, 0.0, 90.0, 63.0], [1, 0.0, 8.0, 48.0, 56.0]])
    compiled = torch.compile(model, fullgraph=True)
    scores = compiled(images, rois)
    torch.testing.assert_close(scores, model(images, rois), rtol=1e-4, atol=1e-5)
    scores.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and grads[0].abs().sum() > 0


def check_cropper() -> None:
    from PIL import Image

    with Image.open(files("s2c_ops.demo_photos") / "coffee.png") as photo:
        result = s2c_ops.Cropper().crop([photo.convert("RGB")], ratio="16:9", top_k=2)[0]
        w, h = photo.size
    x1, y1, x2, y2 = result.boxes[0].tolist()
    assert result.boxes.shape == (2, 4) and 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert abs((x2 - x1) / (y2 - y1) - 16 / 9) < 0.02, result.boxes[0]


class Photos(torch.utils.data.Dataset):
    """Random photos, cropped by AestheticCrop in the loader's worker processes."""

    def __init__(self) -> None:
        from s2c_kornia import AestheticCrop

        self.crop = AestheticCrop("16:9", size=(36, 64))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(i))
        return self.crop(image)[0]


def check_aesthetic_crop() -> None:
    import kornia.augmentation as K

    from s2c_kornia import AestheticCrop

    loader = torch.utils.data.DataLoader(Photos(), batch_size=2, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    assert len(batches) == 2 and all(b.shape == (2, 3, 36, 64) for b in batches)

    seq = K.AugmentationSequential(AestheticCrop("1:1", size=48), data_keys=["input", "bbox_xyxy"])
    images = torch.rand(2, 3, 64, 96)
    boxes = torch.tensor([[[10.0, 10.0, 30.0, 30.0]], [[50.0, 20.0, 70.0, 40.0]]])
    out, out_boxes = seq(images, boxes)
    assert out.shape == (2, 3, 48, 48) and out_boxes.shape == (2, 1, 4)
    # The boxes moved with the crop: the inverse brings them back.
    torch.testing.assert_close(seq.inverse(out, out_boxes, data_keys=["input", "bbox_xyxy"])[1], boxes,
                               rtol=0, atol=1e-3)


def check_cli() -> None:
    s2c = shutil.which("s2c", path=os.path.dirname(sys.executable)) or shutil.which("s2c")
    assert s2c, "the s2c command is not installed"
    done = subprocess.run([s2c, "crop", "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expect", choices=["compiled", "fallback"], help="the operators' implementation")
    parser.add_argument("--installed", action="store_true", help="s2c_ops must come from an install, not a checkout")
    parser.add_argument("--cuda-kernels", action="store_true", help="the compiled CUDA kernels must be registered")
    args = parser.parse_args()
    package = Path(s2c_ops.__file__).resolve().parent
    print(f"s2c_ops {package}, operators: {s2c_ops.ops.implementation()}, torch {torch.__version__}")
    if args.installed:
        assert not (package.parent / "setup.py").exists(), f"s2c_ops imported from a checkout: {package}"
    if args.expect:
        assert s2c_ops.ops.implementation() == args.expect, s2c_ops.ops._extension.FALLBACK_REASON
    if args.cuda_kernels:
        for op in ("rod_align", "gaic_roi_align", "_rod_align_backward", "_gaic_roi_align_backward"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"s2c::{op}", "CUDA"), f"s2c::{op}: no CUDA kernel"
    for check in (check_operators, check_compiled_model, check_cropper, check_aesthetic_crop, check_cli):
        check()
        print(f"ok: {check.__name__}")


if __name__ == "__main__":
    main()
