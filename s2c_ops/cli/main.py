"""The ``s2c`` command line (also ``python -m s2c_ops.cli``)."""
import argparse
import sys
from typing import List, Optional

from . import crop, train
from . import eval as eval_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2c", description="S2CNet aesthetic cropping")
    sub = parser.add_subparsers(dest="command", required=True)

    eval_cli.add_parser(sub)
    train.add_parsers(sub)
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
