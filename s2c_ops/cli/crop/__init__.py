"""``s2c crop``: the best crops of photos for given aspect ratios, from the command line.

    s2c crop INPUT... --ratio R [--ratio R2 ...] [--size WxH] [--top-k K]
             [--official CKPT --config C | --weights RUN | --model NAME] [--boxes FILE | --proposer NAME]
             [--out DIR] [--json FILE [--resume]] [--show] [--device D] [--batch-size N] [--workers N]
             [--overwrite]

Also ``python -m s2c_ops.cli crop ...`` and, sharded over processes,
``torchrun --nproc_per_node=N -m s2c_ops.cli crop ...``. The help text (``args.EPILOG``) is the user
documentation: inputs, output names, the JSON Lines record, the journal and ``--resume``, stopping, what is
printed, exit status.

Modules, in the order an input meets them: :mod:`.args` (the parser and the run's settings),
:mod:`.inputs` (the input stream), :mod:`.decode` (opening and decoding), :mod:`.score` (the model and
batched scoring), :mod:`.write` (crops and previews), :mod:`.journal` (records, the journal, --resume),
:mod:`.report` (messages), :mod:`.run` (the pipeline and the command).
"""
import argparse

from .args import add_arguments
from .run import run


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``crop`` (and its options) on the ``s2c`` sub-command parsers."""
    p = add_arguments(subparsers)
    p.set_defaults(func=run, crop_parser=p)
    return p


__all__ = ["add_parser", "run"]
