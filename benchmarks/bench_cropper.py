"""The default Cropper per photo against the geometry prior's, in one run (the FCDB issue's speed target:
at most 3x).

    python benchmarks/bench_cropper.py [--threads 2] [--rounds 5] [--ratio 16:9]

Both Croppers run as shipped: the same default proposer (faces when OpenCV is installed, then salient
regions), one photo per call (``Cropper.crop(photo, ratio)``) on the four demo photos, in interleaved
rounds; each figure is the median over rounds of the mean milliseconds per photo. The proposer's share is
timed apart (the same call the Cropper makes).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.proposals import default_name  # noqa: E402
from s2c_ops.models.default import named_model  # noqa: E402


def per_photo_ms(fn, photos) -> float:
    started = time.perf_counter()
    for photo in photos:
        fn(photo)
    return (time.perf_counter() - started) * 1e3 / len(photos)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ratio", default="16:9")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    photos = [Image.open(path).convert("RGB") for path in sorted((ROOT / "s2c_ops" / "demo_photos").glob("*.*"))
              if path.suffix in (".png", ".jpg")]
    prior, _ = named_model("prior")
    default, description = named_model("default")
    croppers = {"geometry prior": Cropper(prior), description: Cropper(default)}
    proposer = croppers["geometry prior"]

    def propose(photo):
        resized, _ = proposer.prepare(photo)
        proposer.proposer.propose_objects(proposer.preprocess.unnormalised(resized)[None], proposer.num_boxes)

    timed = {name: (lambda photo, c=c: c.crop(photo, args.ratio)) for name, c in croppers.items()}
    timed["the proposer alone"] = propose
    for fn in timed.values():  # warm-up
        per_photo_ms(fn, photos)
    rounds = {name: [] for name in timed}
    for _ in range(args.rounds):
        for name, fn in timed.items():
            rounds[name].append(per_photo_ms(fn, photos))
    ms = {name: statistics.median(v) for name, v in rounds.items()}
    print(f"*CPU, {args.threads} threads, torch {torch.__version__}; {len(photos)} demo photos, ratio {args.ratio}, "
          f"proposer {default_name()!r}; medians of {args.rounds} interleaved rounds*\n")
    print("| Cropper.crop, one photo per call | ms per photo |\n| --- | ---: |")
    for name, value in ms.items():
        print(f"| {name} | {value:.1f} |")
    print(f"| default / prior | {ms[description] / ms['geometry prior']:.2f}x |")


if __name__ == "__main__":
    main()
