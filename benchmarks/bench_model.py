"""S2CNet inference speed and memory, with baselines measured in the same run.

    python benchmarks/bench_model.py                # CPU, 2 threads
    python benchmarks/bench_model.py --device cuda

1. GAICv1 config, one 256x384 image, its 83 grid anchors and 10 object boxes: the whole forward beside
   the bare timm MobileNetV2 feature extractor on the same image (the official code: 2.25x).
2. Batched inference (batch 8) beside a one-image-per-call loop of the same model: images/s.
3. Peak memory of a batch-64 forward (CPU: growth of the process's peak RSS; CUDA: peak allocated).
"""
import argparse
import resource

import timm
import torch
from torch.utils.benchmark import Timer

from s2c_ops import S2CNet
from s2c_ops.candidates import grid_anchors


def median_ms(fn, min_run_time):
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def inputs(batch, device, h=256, w=384, d=10):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, h, w, generator=g).to(device)
    crops = [grid_anchors(h, w).to(device)] * batch
    xy = torch.rand(batch, d, 2, generator=g) * torch.tensor([w / 2, h / 2])
    wh = torch.rand(batch, d, 2, generator=g) * torch.tensor([w / 2, h / 2]) + 8
    objects = list(torch.cat([xy, xy + wh], -1).to(device))
    return images, crops, objects


def interleaved_ms(fns, rounds, min_run_time):
    """Median time of each function, measured in alternating rounds so that drift in the machine's
    speed affects all of them alike."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_ms(fn, min_run_time))
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.4, help="seconds per measurement")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--memory-batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    model = S2CNet("GAICv1").eval().to(dev)
    fused = model.fused()
    backbone = timm.create_model("mobilenetv2_100", features_only=True, out_indices=(2, 3, 4)).eval().to(dev)
    backbone_cl = timm.create_model("mobilenetv2_100", features_only=True, out_indices=(2, 3, 4)).eval().to(dev)
    backbone_cl.to(memory_format=torch.channels_last)
    where = torch.cuda.get_device_name() if dev == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {where}, torch {torch.__version__}, GAICv1 config, 256x384 images, 83 crops + 10 object boxes each")
    print(f"# medians over {args.rounds} interleaved rounds")

    b = args.batch
    with torch.no_grad():
        one = inputs(1, dev)
        many = inputs(b, dev)
        one_cl = one[0].contiguous(memory_format=torch.channels_last)
        t = interleaved_ms(
            {
                "backbone": lambda: backbone(one[0]),
                "backbone_cl": lambda: backbone_cl(one_cl),
                "model": lambda: model(*one),
                "fused": lambda: fused(*one),
                "batch": lambda: fused(*many),
                "loop": lambda: [fused(many[0][i : i + 1], many[1][i : i + 1], many[2][i : i + 1]) for i in range(b)],
            },
            args.rounds,
            args.min_run_time,
        )
        print("| measure | value |\n| --- | ---: |")
        print(f"| bare timm MobileNetV2 features (as timm gives it), 1 image | {t['backbone']:.2f} ms |")
        print(f"| the same backbone run channels-last, as S2CNet runs it | {t['backbone_cl']:.2f} ms |")
        print(f"| S2CNet forward, 1 image | {t['model']:.2f} ms |")
        print(f"| S2CNet.fused() forward (BatchNorm folded; what Cropper runs), 1 image | {t['fused']:.2f} ms |")
        print(f"| S2CNet / bare backbone (official code: 2.25x) | {t['model'] / t['backbone']:.2f}x |")
        print(f"| S2CNet.fused() / bare backbone | {t['fused'] / t['backbone']:.2f}x |")
        print(f"| S2CNet / the channels-last backbone it runs | {t['model'] / t['backbone_cl']:.2f}x |")
        print(f"| batch {b} (fused): images/s | {b / t['batch'] * 1e3:.1f} |")
        print(f"| one image per call (fused): images/s | {b / t['loop'] * 1e3:.1f} |")
        print(f"| batched / looped throughput | {t['loop'] / t['batch']:.2f}x |")

        m = args.memory_batch
        images, crops, objects = inputs(m, dev)
        if dev == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fused(images, crops, objects)
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            fused(images, crops, objects)
            peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"| batch {m} forward: peak memory growth | {peak:.0f} MiB |")


if __name__ == "__main__":
    main()
