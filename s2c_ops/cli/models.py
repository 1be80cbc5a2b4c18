"""Which model a command uses: the options (``--official CKPT --config C``, ``--weights RUN``, ``--model
NAME``), and the one function that loads and names it for ``s2c crop`` and ``s2c eval``."""
import argparse
from typing import NamedTuple

from torch import nn

from ..models.config import OFFICIAL
from ..models.default import list_models
from ..models.weights import weights_digest


class ModelChoice(NamedTuple):
    module: nn.Module
    description: str  # in every record and report
    digest: str  # of the weights: what s2c crop --resume compares besides the description


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--official", metavar="CKPT", help="an official S2CNet checkpoint (needs --config)")
    which.add_argument("--weights", metavar="RUN", help="weights saved by this package (a file, or an s2c train run folder)")
    which.add_argument("--model", type=str.lower, choices=["default", *list_models()], default="default",
                       help="a model shipped in the package (default: the default model)")
    parser.add_argument("--config", choices=sorted(OFFICIAL), help="official config of --official")


def check_model_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.official and not args.config:
        parser.error("--official needs --config (GAICv1 or GAICv2)")
    if args.config and not args.official:
        parser.error("--config goes with --official")


def load_model(args: argparse.Namespace) -> ModelChoice:
    """The model the options name: an official checkpoint, ``--weights`` or a shipped model."""
    if args.official:
        from ..models.s2cnet import S2CNet

        module = S2CNet.from_official(args.official, args.config)
        description = f"S2CNet {args.config} (official checkpoint {args.official})"
    elif args.weights:
        from ..models.weights import load_weights

        try:
            module, description = load_weights(args.weights)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"--weights {args.weights}: {e}") from None
    else:
        from ..models.default import create_model, model_description

        module, description = create_model(args.model), model_description(args.model)
    return ModelChoice(module, description, weights_digest(module))
