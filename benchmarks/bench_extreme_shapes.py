"""Time and memory of ``Cropper().crop`` on photos of extreme aspect ratio: with the model's input capped
(s2c_ops/cropping/transforms.py, MAX_LONG_SIDE) they should cost about what an ordinary photo does
(budget: <= 5 s and <= 1.5 GB above the process's ordinary use).

    python benchmarks/bench_extreme_shapes.py                          # 10000x40 and 40x10000 at 1:1
    python benchmarks/bench_extreme_shapes.py --proposer saliency --cases 10000x40:1:1 4000x40:16:9

Each case runs in a new process: the Cropper (the default model; the default proposer unless --proposer)
crops an ordinary 640x480 photo first, so the model is loaded and the process is at its ordinary use (its
peak RSS then is the baseline); then the extreme photo (uniform noise, WxH) is cropped once, timed. Rows:
the photo, the ratio, the model's input size, seconds, peak RSS above the baseline (``ru_maxrss``), the
crop (inside the photo, checked).
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from PIL import Image


def noise(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, proposer: str) -> None:
    from s2c_ops import Cropper
    from s2c_ops.cropping.proposals import create_proposer

    size, ratio = case.split(":", 1)
    width, height = (int(v) for v in size.split("x"))
    cropper = Cropper(proposer=create_proposer(proposer))
    cropper.crop(noise(640, 480), ratio)
    baseline = peak_mib()
    photo = noise(width, height)
    start = time.perf_counter()
    (result,) = cropper.crop(photo, ratio)
    seconds = time.perf_counter() - start
    x1, y1, x2, y2 = result.boxes[0].tolist()
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, result.boxes[0]
    model_input = tuple(cropper.preprocess.output_size(height, width))
    print(json.dumps({"case": case, "proposer": proposer, "model_input": model_input,
                      "seconds": seconds, "peak_above_mib": peak_mib() - baseline, "baseline_mib": baseline,
                      "crop": [round(v, 1) for v in (x1, y1, x2, y2)]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["10000x40:1:1", "40x10000:1:1"], metavar="WxH:RATIO")
    parser.add_argument("--proposer", default="default", help="a proposer name (default: the package's default)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.proposer)
    print("| photo (WxH) : ratio | proposer | model input (HxW) | seconds | peak RSS above ordinary (MiB) | crop |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    for case in args.cases:
        cmd = [sys.executable, __file__, "--child", case, "--proposer", args.proposer]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {case} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} |||||", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        h, w = r["model_input"]
        print(f"| {case} | {r['proposer']} | {h}x{w} | {r['seconds']:.2f} | {r['peak_above_mib']:.0f} "
              f"(baseline {r['baseline_mib']:.0f}) | {r['crop']} |", flush=True)


if __name__ == "__main__":
    main()
