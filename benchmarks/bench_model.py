"""S2CNet inference speed and memory, with baselines measured in the same run.

    python benchmarks/bench_model.py                # CPU, 2 threads
    python benchmarks/bench_model.py --device cuda

1. GAICv1 config, one 256x384 image, its 83 grid anchors and 10 object boxes: the whole forward beside
   the bare timm MobileNetV2 feature extractor on the same image (the official code: 2.25x).
2. Batched inference (batch 8) beside a one-image-per-call loop of the same model: images/s.
3. Peak memory of a batch-64 forward (CPU: growth of the process's peak RSS; CUDA: peak allocated).
4. CUDA only, at --batch: variants of the batched forward (TF32 or strict float32, CUDA-graph replay,
   bf16 autocast, --compile: torch.compile), each with its largest score difference from the float32
   CPU model, the bare backbone at the same batch, and (--profile) the GPU kernels' time shares.
"""
import argparse
import contextlib
import copy
import functools
import resource

import timm
import torch

from s2c_ops import S2CNet
from s2c_ops.cropping.candidates import grid_anchors
from s2c_ops.models.fusion import fold_batchnorm, fuse_layers
from timing import graphed, median_ms


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


def scoring_fn(model, images, crops, objects):
    """The forward after the input checks (which synchronise): features + score on fixed buffers."""
    rois_c, rois_o = model.check_inputs(images, crops, objects)
    size = images.shape[-2:]
    return lambda: model.score(model.features(images), rois_c, rois_o, size)


@contextlib.contextmanager
def precision(tf32):
    """TF32 on (cuDNN's default for convolutions, and matrix products) or off (strict float32)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def gpu_variants(model, batch, rounds, min_run_time, profile, compile_model):
    """Batched forward variants on CUDA, each with its max |score - float32 CPU score|."""
    images, crops, objects = inputs(batch, "cuda")
    reference = model.to("cpu").fused()(images.cpu(), [c.cpu() for c in crops], [o.cpu() for o in objects])
    model.to("cuda")
    fused = model.fused()
    torch_default = contextlib.nullcontext  # TF32 convolutions (cuDNN), full float32 matrix products
    strict = functools.partial(precision, tf32=False)
    tf32 = functools.partial(precision, tf32=True)

    def bf16():
        # No cast cache: cached weight casts are freed when the context exits, and a captured graph
        # would go on reading them.
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)

    fns, errors, failed = {}, {}, {}

    def add(name, context, fn):
        """Measures fn (eager) or, for names with "graph", its CUDA-graph replay."""
        try:
            with context():
                if "graph" in name:
                    graph, out = graphed(fn)
                    graph.replay()
                    fns[name] = graph.replay
                else:
                    out = fn()
                    fns[name] = lambda: _in(context, fn)
                errors[name] = (out.float().cpu() - reference).abs().max().item()
        except Exception as e:  # reported, not fatal: the other variants still run
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"

    forward = lambda: fused(images, crops, objects)  # noqa: E731
    scoring = scoring_fn(fused, images, crops, objects)
    add("fp32, torch defaults (TF32 convolutions only), eager", torch_default, forward)
    add("fp32 strict (no TF32), eager", strict, forward)
    add("fp32 + TF32 convolutions and matrix products, eager", tf32, forward)
    add("fp32, torch defaults, CUDA graph", torch_default, scoring)
    add("fp32 strict, CUDA graph", strict, scoring)
    add("bf16 autocast, eager", bf16, forward)
    add("bf16 autocast, CUDA graph", bf16, scoring)
    backbone = timm.create_model("mobilenetv2_100", features_only=True, out_indices=(2, 3, 4)).eval().cuda()
    backbone.to(memory_format=torch.channels_last)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    fns["bare timm backbone, channels-last, torch defaults"] = lambda: backbone(images_cl)
    fns["bare timm backbone, channels-last, strict fp32"] = lambda: _in(strict, backbone, images_cl)
    report(fns, errors, failed, batch, reference, rounds, min_run_time)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with strict(), torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            forward()
            torch.cuda.synchronize()
        events = prof.key_averages()
        key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
        total = sum(getattr(e, key) for e in events)
        print(f"\n# GPU kernels of one strict fp32 eager forward at batch {batch}: {total / 1e3:.2f} ms in all")
        print("| kernel | ms | share | calls |\n| --- | ---: | ---: | ---: |")
        for e in sorted(events, key=lambda e: -getattr(e, key))[:20]:
            name = e.key.replace("void ", "").replace("at::native::", "").replace("(anonymous namespace)::", "")
            print(f"| {name[:150]} | {getattr(e, key) / 1e3:.3f} | {getattr(e, key) / total:.1%} | {e.count} |")
    if compile_model:  # last and on its own: the rows above are printed even if this part fails
        for table in (fns, errors, failed):
            table.clear()
        compiled = torch.compile(scoring)
        add("fp32 strict, torch.compile + CUDA graph", strict, compiled)
        add("fp32, torch defaults, torch.compile + CUDA graph", torch_default, compiled)
        add("fp32 strict, CUDA graph (baseline of this table)", strict, scoring)
        report(fns, errors, failed, batch, reference, rounds, min_run_time)


def report(fns, errors, failed, batch, reference, rounds, min_run_time):
    t = interleaved_ms(fns, rounds, min_run_time)
    print(f"\n# batch {batch}, CUDA variants; error = max |score - float32 CPU score| (scores span "
          f"{reference.min():.3f}..{reference.max():.3f})")
    print("| variant | ms / batch | images/s | max error |\n| --- | ---: | ---: | ---: |")
    for name, ms in t.items():
        err = f"{errors[name]:.1e}" if name in errors else "-"
        print(f"| {name} | {ms:.2f} | {batch / ms * 1e3:.0f} | {err} |", flush=True)
    for name, error in failed.items():
        print(f"| {name} | failed: {error} | | |", flush=True)


def _in(context, fn, *args):
    with context():
        return fn(*args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.4, help="seconds per measurement")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--memory-batch", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="CUDA: the kernels' time shares")
    parser.add_argument("--compile", action="store_true", help="CUDA: also a torch.compile variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    model = S2CNet("GAICv1").eval().to(dev)
    fused = model.fused()
    backbone = timm.create_model("mobilenetv2_100", features_only=True, out_indices=(2, 3, 4)).eval().to(dev)
    backbone_cl = timm.create_model("mobilenetv2_100", features_only=True, out_indices=(2, 3, 4)).eval().to(dev)
    backbone_cl.to(memory_format=torch.channels_last)
    backbone_fused = copy.deepcopy(backbone_cl)
    fold_batchnorm(backbone_fused)
    fuse_layers(backbone_fused)
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
                "backbone_fused": lambda: backbone_fused(one_cl),
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
        print(f"| the same backbone fused as S2CNet.fused() fuses it | {t['backbone_fused']:.2f} ms |")
        print(f"| S2CNet forward, 1 image | {t['model']:.2f} ms |")
        print(f"| S2CNet.fused() forward (what Cropper runs), 1 image | {t['fused']:.2f} ms |")
        print(f"| S2CNet / bare backbone (official code: 2.25x) | {t['model'] / t['backbone']:.2f}x |")
        print(f"| S2CNet.fused() / bare backbone | {t['fused'] / t['backbone']:.2f}x |")
        print(f"| S2CNet / the channels-last backbone it runs | {t['model'] / t['backbone_cl']:.2f}x |")
        print(f"| S2CNet.fused() / the fused backbone it runs | {t['fused'] / t['backbone_fused']:.2f}x |")
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
        if dev == "cuda":
            gpu_variants(model, b, args.rounds, args.min_run_time, args.profile, args.compile)


if __name__ == "__main__":
    main()
