"""``s2c crop``: the best crops of photos for given aspect ratios, from the command line.

    s2c crop INPUT... --ratio R [--ratio R2 ...] [--size WxH] [--top-k K]
             [--official CKPT --config C | --weights RUN | --model NAME] [--boxes FILE | --proposer NAME]
             [--out DIR] [--json FILE [--resume]] [--show] [--device D] [--batch-size N] [--workers N]
             [--overwrite]

Also ``python -m s2c_ops.cli crop ...`` and, sharded over processes,
``torchrun --nproc_per_node=N -m s2c_ops.cli crop ...``. The help text (:func:`.args.help_text`) is the user
documentation: inputs, output names, the JSON Lines record, the journal and ``--resume``, stopping, what is
printed, exit status.

Modules: :mod:`.args` (the parser, the ratios, output names), :mod:`.options` (the options, read and
checked once), then in the order an input meets them :mod:`.inputs` (the input stream), :mod:`.decode`
(opening and decoding), :mod:`.score` (batched scoring), :mod:`.write` (crops and previews),
:mod:`.record` (the record of an input and ratio), :mod:`.journal` (the journal and --resume),
:mod:`.report` (messages); :mod:`.pipeline` runs them over the stream and :mod:`.run` is the command.
"""
import argparse

from .args import add_arguments
from .run import command


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``crop`` (and its options) on the ``s2c`` sub-command parsers."""
    p = add_arguments(subparsers)
    p.set_defaults(func=command)
    return p


__all__ = ["add_parser"]
