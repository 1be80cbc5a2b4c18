"""The ``s2c`` command line (also ``python -m s2c_ops.cli``)."""
import argparse
import sys
from typing import List, Optional

from . import crop
from . import eval as eval_cli


def cmd_train_prior(args) -> int:
    from ..training.prior import train_prior

    train_prior(args.data, args.out, epochs=args.epochs, seed=args.seed, val_fraction=args.val_fraction,
                hidden=args.hidden)
    return 0


def cmd_train(args) -> int:
    from ..training.s2cnet import train

    train(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2c", description="S2CNet aesthetic cropping")
    sub = parser.add_subparsers(dest="command", required=True)

    eval_cli.add_parser(sub)

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
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"s2c {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
