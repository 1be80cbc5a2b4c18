"""The ``s2c`` command line (also ``python -m s2c_ops.cli``)."""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from . import crop
from ..files import write_json_atomic
from ..models.config import OFFICIAL


def _print_metrics(metrics: dict, label: str) -> None:
    print(f"{label}: {metrics['images']} images")
    print("| srcc | pcc | acc1/5 | acc2/5 | acc3/5 | acc4/5 | acc5 | acc1/10 | acc2/10 | acc3/10 | acc4/10 | acc10 |")
    print("| " + " | ".join(["---:"] * 12) + " |")
    keys = ["srcc", "pcc", "acc1_5", "acc2_5", "acc3_5", "acc4_5", "acc5", "acc1_10", "acc2_10", "acc3_10", "acc4_10", "acc10"]
    print("| " + " | ".join(f"{metrics[k]:.3f}" if k in ("srcc", "pcc") else f"{metrics[k]:.1f}" for k in keys) + " |")


def cmd_train_prior(args) -> int:
    from ..training.prior import train_prior

    train_prior(args.data, args.out, epochs=args.epochs, seed=args.seed, val_fraction=args.val_fraction,
                hidden=args.hidden)
    return 0


def cmd_train(args) -> int:
    from ..training.s2cnet import train

    train(args)
    return 0


def cmd_eval(args) -> int:
    from tqdm import tqdm

    from ..data.metrics import GAICMetrics
    from ..models.prior import GeometryPrior

    metrics = GAICMetrics()
    progress = dict(disable=not sys.stderr.isatty(), unit="image")
    model, label = None, "geometry prior"
    if args.weights:
        from ..models.weights import load_weights

        model, label = load_weights(args.weights)
    if args.model == "prior" or isinstance(model, GeometryPrior):
        from ..training.prior import load_geometry, prior_scores

        if model is None:
            model = GeometryPrior.default()
        with torch.no_grad():
            for image in tqdm(load_geometry(args.data, args.split), desc="eval prior", **progress):
                metrics.update(image["id"], prior_scores(model, image), image["mos"])
    else:
        from ..data.gaicd import GAICD, read_split
        from ..models.s2cnet import S2CNet

        if args.official:
            model = S2CNet.from_official(args.official, args.config)
            label = f"S2CNet {args.config} ({args.official})"
        device = torch.device(args.device)
        model = model.fused().to(device)
        dataset = GAICD.with_images(args.data, args.split)
        missing = len(read_split(Path(args.data) / "split.json")[args.split]) - len(dataset)
        if missing:
            print(f"note: {missing} images of the {args.split} split have no pixels here; evaluating {len(dataset)}",
                  file=sys.stderr)
        with torch.no_grad():
            for item in tqdm(dataset, desc="eval", **progress):
                scores = model(item["image"][None].to(device), [item["crop_boxes"].float().to(device)],
                               [item["object_boxes"].float().to(device)])
                metrics.update(item["id"], scores.float().cpu(), item["mos"])
    result = metrics.to_dict()
    _print_metrics(result["metrics"], label)
    if args.json:
        write_json_atomic(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2c", description="S2CNet aesthetic cropping")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="evaluate a model on GAICD (the published metrics)")
    p.add_argument("--data", required=True, help="GAICD folder (annotations/, bbox/, images/, split.json, ...)")
    p.add_argument("--split", default="test", choices=["train", "test"])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--official", metavar="CKPT", help="an official S2CNet checkpoint (needs --config)")
    which.add_argument("--weights", metavar="RUN", help="weights saved by this package: a file, or an `s2c train` run folder")
    which.add_argument("--model", choices=["prior"], help="the geometry prior (no pixels needed)")
    p.add_argument("--config", choices=sorted(OFFICIAL), help="official config of --official")
    p.add_argument("--json", metavar="OUT", help="write metrics and per-image scores here")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.set_defaults(func=cmd_eval)

    from ..training.s2cnet import add_arguments as add_train_arguments

    p = sub.add_parser("train", help="train S2CNet on GAICD (the GAIC recipe; also under torchrun)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-prior", help="train the geometry prior on GAICD ratings (minutes on a CPU)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--hidden", type=int, default=64)
    p.set_defaults(func=cmd_train_prior)

    crop.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "eval" and args.official and not args.config:
        parser.error("--official needs --config (GAICv1 or GAICv2)")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"s2c {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
