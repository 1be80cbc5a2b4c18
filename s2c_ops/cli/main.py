"""The ``s2c`` command line (also ``python -m s2c_ops.cli``); exit statuses: :mod:`.errors`."""
import argparse
import sys
from typing import List, Optional

from . import crop, export, table, train
from . import eval as eval_cli
from .errors import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2c", description="S2CNet aesthetic cropping")
    sub = parser.add_subparsers(dest="command", required=True)

    eval_cli.add_parser(sub)
    train.add_parsers(sub)
    crop.add_parser(sub)
    export.add_parser(sub)
    table.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args, f"s2c {args.command}")


if __name__ == "__main__":
    sys.exit(main())
