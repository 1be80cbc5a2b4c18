"""A crop table's size on disk and load time at dataset scale, with a synthetic table (no scoring).

    python benchmarks/bench_crop_table.py                       # 100,000 images, 1 ratio, 16 candidates
    python benchmarks/bench_crop_table.py --images 1000000 --ratios 2

Prints the file's size, ``CropTable.load`` time (cold: first load in this process; the file is in the page
cache, having just been written), and the time of one batch lookup of 64 keys (the per-batch cost in
training)."""
import argparse
import os
import tempfile
import time

import torch

from s2c_ops.cropping.table import CropTable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--ratios", type=int, default=1)
    parser.add_argument("--candidates", type=int, default=16)
    args = parser.parse_args()
    n, r, k = args.images, args.ratios, args.candidates
    g = torch.Generator().manual_seed(0)
    table = CropTable("index", candidates=k)
    table.bind([1.0 + i / 3 for i in range(r)], "sha256:synthetic", "default")
    sizes = torch.tensor([[375, 500]], dtype=torch.int32).expand(n, 2)
    boxes = torch.rand(n, r, k, 4, generator=g) * 375
    scores = torch.rand(n, r, k, generator=g).sort(-1, descending=True).values
    start = time.perf_counter()
    table.add(torch.arange(n), sizes, boxes, scores)
    table._consolidate()
    made = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "table.safetensors")
        start = time.perf_counter()
        table.save(path)
        saved = time.perf_counter() - start
        start = time.perf_counter()
        loaded = CropTable.load(path)
        loaded_s = time.perf_counter() - start
        keys = torch.randint(0, n, (64,), generator=g)
        start = time.perf_counter()
        for _ in range(100):
            loaded.lookup(keys, (375, 500), 1.0)
        lookup_ms = (time.perf_counter() - start) * 10
        size = os.path.getsize(path)
    print(f"{n} images, {r} ratio(s), {k} candidates: file {size / 1e6:.1f} MB; add {made:.2f} s, save {saved:.2f} s, "
          f"load {loaded_s:.3f} s, lookup of 64 keys {lookup_ms:.2f} ms")


if __name__ == "__main__":
    main()
