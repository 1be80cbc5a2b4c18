"""The default saliency proposer's cost, split into the saliency map and the rest (components, their
boxes, ranking, non-maximum suppression, padding), on smooth random images.

    python benchmarks/bench_proposals.py                 # CPU, 2 threads, batch 64 of 256x384
    python benchmarks/bench_proposals.py --device cuda
"""
import argparse

import torch
import torch.nn.functional as F

from s2c_ops.cropping.proposals import SaliencyProposer
from timing import median_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    images = F.avg_pool2d(torch.rand(args.batch, 3, 256, 384, generator=g), 31, 1, 15).to(args.device)
    proposer = SaliencyProposer()
    whole = median_ms(lambda: proposer(images, 10), args.min_run_time)
    saliency = median_ms(lambda: proposer.saliency(images), args.min_run_time)
    fixed = proposer.saliency(images)
    proposer.saliency = lambda _: fixed  # the map precomputed: the rest alone
    rest = median_ms(lambda: proposer(images, 10), args.min_run_time)
    print(f"# SaliencyProposer, {args.device}, {torch.get_num_threads()} threads, batch {args.batch} of 256x384")
    print("| part | ms / batch |\n| --- | ---: |")
    print(f"| whole call | {whole:.1f} |\n| saliency map | {saliency:.1f} |\n| the rest (map precomputed) | {rest:.1f} |")


if __name__ == "__main__":
    main()
