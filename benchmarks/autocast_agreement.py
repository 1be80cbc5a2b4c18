"""Top-1 crops under ``torch.autocast`` against float32, on FCDB validation photos (../shared/data/FCDB):
the Cropper with the default model (or --model), each photo at its human crop's ratio and at 16:9; how many
top-1 crops are the same, and the largest score difference of the chosen crops.

    python benchmarks/autocast_agreement.py [--model default] [--dtype bfloat16] [--photos N]
"""
import argparse
import os
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.images import load_image  # noqa: E402
from s2c_ops.data.fcdb import FCDB  # noqa: E402
from s2c_ops.models import create_model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "FCDB"))
    p.add_argument("--model", default="default")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    p.add_argument("--photos", type=int, default=None, help="the first N validation photos (default: all)")
    args = p.parse_args()
    if not os.path.isdir(args.data):
        print(f"skipped: no FCDB folder at {args.data}", file=sys.stderr)
        return 0
    photos = FCDB(args.data, "val", pixels=False).photos
    n = len(photos) if args.photos is None else min(args.photos, len(photos))
    cropper = Cropper(create_model(args.model))
    dtype = getattr(torch, args.dtype)
    same, cases, worst = 0, 0, 0.0
    start = time.perf_counter()
    for photo in photos[:n]:
        image, human = load_image(photo.path), photo.crop.tolist()
        ratios = [float((human[2] - human[0]) / (human[3] - human[1])), 16 / 9]
        exact = cropper.crop_ratios(image, ratios)[0]
        with torch.autocast("cpu", dtype=dtype):
            low = cropper.crop_ratios(image, ratios)[0]
        for a, b in zip(exact, low):
            cases += 1
            same += bool(torch.equal(a.boxes[0], b.boxes[0]))
            worst = max(worst, float((a.scores[0] - b.scores[0]).abs()))
    print(f"{args.model}, autocast {args.dtype} on the CPU, {n} FCDB validation photos x (human ratio, 16:9): "
          f"top-1 the same in {same}/{cases} ({100 * same / cases:.1f}%), largest top-1 score difference "
          f"{worst:.4f}; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
