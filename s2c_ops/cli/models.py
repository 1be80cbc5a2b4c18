"""Which model a command uses: the options (``--official CKPT --config C``, ``--weights RUN``, ``--model
NAME``), and the one function that loads and names it for ``s2c crop`` and ``s2c eval``."""
import argparse
from dataclasses import dataclass
from typing import NamedTuple, Optional

from torch import nn

from ..models.config import OFFICIAL
from ..models.registry import list_models
from ..models.weights import weights_digest
from .errors import UsageError, raise_if_interrupted


class ModelChoice(NamedTuple):
    module: nn.Module
    description: str  # in every record and report
    digest: str  # of the weights: what s2c crop --resume compares besides the description


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--official", metavar="CKPT", help="an official S2CNet checkpoint (needs --config)")
    which.add_argument("--weights", metavar="RUN", help="weights saved by this package (a file, or an s2c train run folder)")
    which.add_argument("--model", type=str.lower, choices=list_models(), default="default",
                       help="a model shipped in the package (default: the default model)")
    parser.add_argument("--config", choices=sorted(OFFICIAL), help="official config of --official")


@dataclass(frozen=True)
class ModelOptions:
    """Which model a command uses, read once from the options of :func:`add_model_arguments`."""

    name: str = "default"  # --model: a model shipped in the package
    official: Optional[str] = None  # --official CKPT (with config)
    config: Optional[str] = None
    weights: Optional[str] = None  # --weights RUN

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "ModelOptions":
        if args.official and not args.config:
            raise UsageError("--official needs --config (GAICv1 or GAICv2)")
        if args.config and not args.official:
            raise UsageError("--config goes with --official")
        if args.model.startswith("s2cnet_"):
            config = args.model[len("s2cnet_"):].replace("gaic", "GAIC")
            raise UsageError(f"--model {args.model} needs the authors' checkpoint: use --official CKPT --config {config}")
        return cls(args.model, args.official, args.config, args.weights)


def load_model(options: ModelOptions) -> ModelChoice:
    """The model the options name: an official checkpoint, ``--weights`` or a shipped model."""
    if options.official:
        from ..models.registry import create_model

        module = create_model(f"s2cnet_{options.config.lower()}", checkpoint_path=options.official)
        description = f"S2CNet {options.config} (official checkpoint {options.official})"
    elif options.weights:
        from ..models.weights import describe, load, weights_file

        try:
            file = weights_file(options.weights)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"--weights {options.weights}: {e}") from None
        module = load(file)
        description = f"{describe(module)} ({file})"
    else:
        from ..models.registry import create_model, model_description

        module, description = create_model(options.name), model_description(options.name)
    raise_if_interrupted()  # the heavy imports are behind us: a Ctrl-C a library swallowed stops here
    return ModelChoice(module, description, weights_digest(module))
