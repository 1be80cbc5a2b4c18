"""RoDAlign / GAIC RoIAlign against torchvision.ops.roi_align (sampling_ratio=1, aligned=True) of the
same output size, measured in one run. Prints medians and the ratios our time / torchvision's time.
The "[fallback]" rows are the pure-PyTorch operators (s2c_ops/ops/fallback.py) that stand in when the
compiled library cannot be used, registered here beside the compiled ones.

    python benchmarks/bench_ops.py                 # CPU, 2 threads
    python benchmarks/bench_ops.py --device cuda   # CUDA
"""
import argparse

import torch
from torchvision.ops import roi_align as tv_roi_align

import s2c_ops  # noqa: F401  (registers torch.ops.s2c)
from s2c_ops.ops import fallback
from timing import graphed, median_ms

fallback.register("s2c_fallback")

# name: (images, channels, height, width, rois per image, points, image stride)
SIZES = {
    "model (16 img x 90 ROIs, 8x16x24, 10x10)": (16, 8, 16, 24, 90, 10, 16),
    "large (8 img, C=256, 64x64, 4096 ROIs, 7x7)": (8, 256, 64, 64, 512, 7, 16),
}
CUDA_SIZES = {
    "batch 64 (64 img x 90 ROIs, 8x16x24, 10x10)": (64, 8, 16, 24, 90, 10, 16),
    **SIZES,
}


def make_inputs(n, c, h, w, per_image, device, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    img_h, img_w = h * 16, w * 16
    xy1 = torch.rand(n * per_image, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.5
    wh = torch.rand(n * per_image, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.5 + 16
    batch = torch.arange(n).repeat_interleave(per_image)[:, None].float()
    rois = torch.cat([batch, xy1, xy1 + wh], 1).to(device=device, dtype=dtype)
    x = torch.randn(n, c, h, w, generator=g).to(device=device, dtype=dtype)
    return x, rois


def bench(device, min_run_time):
    rows = []
    sizes = CUDA_SIZES if device == "cuda" else SIZES
    for name, (n, c, h, w, per_image, p, stride) in sizes.items():
        x, rois = make_inputs(n, c, h, w, per_image, device)
        xg = x.clone().requires_grad_()
        scale = 1.0 / stride
        grad = torch.randn(rois.shape[0], c, p, p, device=device)
        ops = {
            "torchvision roi_align": lambda t: tv_roi_align(t, rois, p, scale, sampling_ratio=1, aligned=True),
            "s2c rod_align": lambda t: torch.ops.s2c.rod_align(t, rois, scale, p, p),
            "s2c gaic_roi_align": lambda t: torch.ops.s2c.gaic_roi_align(t, rois, scale, p, p),
            "s2c rod_align [fallback]": lambda t: torch.ops.s2c_fallback.rod_align(t, rois, scale, p, p),
            "s2c gaic_roi_align [fallback]": lambda t: torch.ops.s2c_fallback.gaic_roi_align(t, rois, scale, p, p),
        }
        times = {}
        for op_name, op in ops.items():
            fwd = median_ms(lambda: op(x), min_run_time)
            both = median_ms(lambda: torch.autograd.grad(op(xg), xg, grad), min_run_time)
            times[op_name] = (fwd, both)
            if device == "cuda" and not op_name.endswith("[fallback]"):
                fwd_g = median_ms(graphed(lambda: op(x))[0].replay, min_run_time)
                both_g = median_ms(graphed(lambda: torch.autograd.grad(op(xg), xg, grad))[0].replay, min_run_time)
                times[op_name + " [graph]"] = (fwd_g, both_g)
        for op_name, (fwd, both) in times.items():
            base = "torchvision roi_align" + (" [graph]" if op_name.endswith("[graph]") else "")
            base_fwd, base_both = times[base]
            # Fewest bytes a forward must move: read the features and rois once, write the output.
            nbytes = (x.numel() + rois.numel() + rois.shape[0] * c * p * p) * x.element_size()
            rows.append((name, op_name, fwd, fwd / base_fwd, both, both / base_both, nbytes / fwd / 1e6))
    return rows


def copy_bandwidth_gbs(min_run_time, nbytes=1 << 30):
    """The card's practical bandwidth: a large device-to-device copy, bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, device="cuda").uniform_()
    dst = torch.empty_like(src)
    return 2 * nbytes / median_ms(lambda: dst.copy_(src), min_run_time) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = bench(args.device, args.min_run_time)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {where}, torch {torch.__version__}; ratio = time / torchvision roi_align time (same run)")
    print("| size | op | fwd ms | fwd ratio | fwd+bwd ms | fwd+bwd ratio | fwd GB/s (min bytes) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, op_name, fwd, rf, both, rb, gbs in rows:
        print(f"| {name} | {op_name} | {fwd:.4f} | {rf:.2f}x | {both:.4f} | {rb:.2f}x | {gbs:.0f} |")
    if args.device == "cuda":
        print(f"\n# bandwidth ceiling (1 GiB device-to-device copy, read + write): {copy_bandwidth_gbs(args.min_run_time):.0f} GB/s")


if __name__ == "__main__":
    main()
