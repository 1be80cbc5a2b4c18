"""Start-up cost: ``import s2c_ops`` against ``import torch`` (issue 23's budget: at most 1.25x).

    OMP_NUM_THREADS=1 python benchmarks/bench_import.py --rounds 11

Each import runs in a fresh interpreter (``python -X importtime`` is not used: it slows imports); the two are
interleaved round by round, so a machine busy with something else slows both alike, and each one's median
over the rounds is compared. ``--also NAME`` measures more modules (``s2c_ops.data``, ``s2c_ops.cli``...).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def seconds(module: str) -> float:
    """Wall time of a fresh interpreter that imports ``module``, less that of one that imports nothing."""
    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=os.environ)
        return time.perf_counter() - started

    return run(f"import {module}") - run("pass")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--also", nargs="*", default=[], help="more modules to time")
    args = parser.parse_args()
    modules = ["torch", "s2c_ops", *args.also]
    times = {m: [] for m in modules}
    for _ in range(args.rounds):
        for m in modules:
            times[m].append(seconds(m))
    torch_median = statistics.median(times["torch"])
    print(f"| module | median s ({args.rounds} fresh processes) | x import torch |")
    print("| --- | ---: | ---: |")
    for m in modules:
        median = statistics.median(times[m])
        print(f"| import {m} | {median:.2f} | {median / torch_median:.2f} |")
    ratio = statistics.median(times["s2c_ops"]) / torch_median
    print(f"import s2c_ops / import torch = {ratio:.2f} (budget 1.25): {'ok' if ratio <= 1.25 else 'OVER'}")
    return 0 if ratio <= 1.25 else 1


if __name__ == "__main__":
    sys.exit(main())
