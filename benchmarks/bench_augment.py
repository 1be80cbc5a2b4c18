"""AestheticCrop speed beside Kornia's RandomResizedCrop, measured in the same run.

    python benchmarks/bench_augment.py                  # CPU, 2 threads, batch 8 of 256x384 -> 192x256
    python benchmarks/bench_augment.py --device cuda --batch 64

Rows (time per batch, median of torch.utils.benchmark's blocked_autorange), each with the default proposer
(faces, then salient regions) unless said:
- RandomResizedCrop((192, 256)), cropping_mode="resample": the baseline.
- AestheticCrop("4:3", size=(192, 256)) with the geometry prior (``GeometryPrior.default()``).
- the same with ``validate=False``: without the check of the pixels (in [0, 1], no NaN), which runs by
  default on the CPU (``validate=None``); the difference is its cost.
- the geometry prior with the saliency proposer alone (``proposer="saliency"``): the face detector's share.
- the same with the package's default model (``AestheticCrop(ratio, size=size)``, whatever it is).
- the same with S2CNet's GAICv1 configuration (random weights: the official model's speed).
- AestheticCrop replaying its params (the crop and resize alone, no scoring): the part that compares
  with RandomResizedCrop's work.
"""
import argparse
import os

import kornia.augmentation as K
import torch

import s2c_ops
from s2c_kornia import AestheticCrop
from s2c_ops.models.prior import GeometryPrior
from timing import median_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 256), metavar=("H", "W"))
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--no-s2cnet", action="store_true", help="leave out the GAICv1 S2CNet row")
    parser.add_argument("--profile", action="store_true", help="the prior row's costliest operators")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    size = tuple(args.size)
    ratio = size[1] / size[0]

    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.height, args.width, generator=g).to(dev)

    rrc = K.RandomResizedCrop(size, cropping_mode="resample")
    prior = AestheticCrop(ratio, size=size, model=GeometryPrior.default())
    unchecked = AestheticCrop(ratio, size=size, model=GeometryPrior.default(), validate=False)
    saliency = AestheticCrop(ratio, size=size, model=GeometryPrior.default(), proposer="saliency")
    default = AestheticCrop(ratio, size=size)
    rows = [
        ("RandomResizedCrop (kornia), resample", lambda: rrc(images)),
        ("AestheticCrop, geometry prior", lambda: prior(images)),
        ("AestheticCrop, geometry prior, validate=False", lambda: unchecked(images)),
        ("AestheticCrop, geometry prior, saliency proposer (no faces)", lambda: saliency(images)),
        ("AestheticCrop, package default", lambda: default(images)),
    ]
    if not args.no_s2cnet:
        s2cnet = AestheticCrop(ratio, size=size, model=s2c_ops.S2CNet("GAICv1").eval())
        rows.append(("AestheticCrop, S2CNet GAICv1", lambda: s2cnet(images)))
    prior(images)  # choose the crops once
    params = prior._params
    rows.append(("AestheticCrop, replaying params (crop + resize only)", lambda: prior(images, params=params)))

    for _, fn in rows:  # warm-up (the scorer is prepared at first use on a device)
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(
        f"AestheticCrop vs RandomResizedCrop: {card}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"batch {args.batch} of {args.height}x{args.width} -> {size[0]}x{size[1]} (ratio {ratio:.4g}); "
        f"load average {load:.2f}\n"
    )
    print("| augmentation | ms / batch | vs RandomResizedCrop |")
    print("| --- | ---: | ---: |")
    baseline = None
    for name, fn in rows:
        ms = median_ms(fn, args.min_run_time)
        baseline = ms if baseline is None else baseline
        print(f"| {name} | {ms:.2f} | {ms / baseline:.1f}x |", flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with profile(activities=activities) as prof:
            prior(images)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        print("\n# one prior-row call, costliest operators by their own CPU time")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))


if __name__ == "__main__":
    main()
