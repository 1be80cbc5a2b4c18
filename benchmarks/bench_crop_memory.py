"""Peak memory of ``s2c crop`` against the number of inputs: inputs are listed and processed as a stream,
so 5,000 inputs should need at most 1.2x the peak RSS of 500.

    python benchmarks/bench_crop_memory.py                   # 500 and 5,000 inputs, crops and journal
    python benchmarks/bench_crop_memory.py --counts 500 5000 20000 --no-out
    python benchmarks/bench_crop_memory.py --repo /path/to/other/checkout   # the same, another version

Each count gets its own folder of small generated photos (96x64 px, JPEG and PNG, a bright blob on noise)
and one run of ``python -m s2c_ops.cli crop FOLDER --ratio 16:9 --ratio 1:1 --proposer image --device cpu
--json FILE [--out DIR]`` in a new process (the fastest settings: the image proposer, the default model).
Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Rows: inputs, peak RSS (MiB), wall time, records,
and the peak against the smallest count's.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    for i in range(count):
        cx, cy = rng.uniform(20, 76), rng.uniform(15, 49)
        blob = 180 * np.exp(-(((x - cx) / 15) ** 2 + ((y - cy) / 10) ** 2))
        pixels = rng.integers(0, 60, (64, 96, 3)).astype(np.float32) + blob[..., None]
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"p{i:06d}.{'png' if i % 4 == 3 else 'jpg'}")


def peak_rss(cmd: list, env: dict) -> tuple:
    """(peak RSS in MiB, seconds, exit status) of ``cmd`` run as a child."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return usage.ru_maxrss / 1024, seconds, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--no-out", action="store_true", help="records only (no --out): no crops written")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose s2c_ops runs (default: this one)")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(args.repo), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    tmp = Path(tempfile.mkdtemp(prefix="bench_crop_memory_"))
    rows = []
    try:
        for n in args.counts:
            photos = tmp / f"photos_{n}"
            make_photos(photos, n, seed=n)
            cmd = [sys.executable, "-m", "s2c_ops.cli", "crop", str(photos), "--ratio", "16:9", "--ratio", "1:1",
                   "--proposer", "image", "--device", "cpu", "--workers", str(args.workers),
                   "--batch-size", str(args.batch_size), "--json", str(tmp / f"records_{n}.jsonl")]
            if not args.no_out:
                cmd += ["--out", str(tmp / f"out_{n}")]
            rss, seconds, _ = peak_rss(cmd, env)
            with open(tmp / f"records_{n}.jsonl") as f:
                records = sum(1 for _ in f)
            rows.append((n, rss, seconds, records))
            shutil.rmtree(photos)
            shutil.rmtree(tmp / f"out_{n}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# s2c crop ({args.repo}), 96x64 px photos, 16:9 + 1:1, --proposer image, default model, CPU, "
          f"--workers {args.workers}, --batch-size {args.batch_size}, {'records only' if args.no_out else 'crops + records'}")
    print("| inputs | peak RSS (MiB) | time (s) | records | peak / first |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, rss, seconds, records in rows:
        print(f"| {n} | {rss:.0f} | {seconds:.1f} | {records} | {rss / rows[0][1]:.3f} |")


if __name__ == "__main__":
    main()
