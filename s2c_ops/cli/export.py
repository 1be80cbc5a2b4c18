"""``s2c export``: a scorer as an ONNX model and/or an AOTInductor package, with the JSON file that says how
to feed it (docs/deploy.md)."""
import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import torch

from ..distributed import Ranks, rank_device
from ..files import not_a_file_to_write, not_a_folder_to_write
from .errors import UsageError
from .models import ModelOptions, add_model_arguments, load_model

FORMATS = ("onnx", "aoti")
#: The files written in --out, by format.
FILE_NAMES = {"onnx": "scorer.onnx", "aoti": "scorer.pt2", "json": "scorer.json"}


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    formats: Tuple[str, ...]
    model: ModelOptions
    device: str
    overwrite: bool

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "ExportOptions":
        """The only code that reads the command line; an --out that is a file, a --device torch does not know
        and files already in --out without --overwrite are a :class:`~s2c_ops.cli.errors.UsageError`, found
        before the model loads."""
        formats = tuple(FORMATS) if args.format == "both" else (args.format,)
        out = Path(args.out)
        why = not_a_folder_to_write(out)
        if why:
            raise UsageError(f"--out {out}{why}")
        try:
            torch.device(args.device)
            if "aoti" in formats:  # the package is compiled for the device: one that computes, here
                rank_device(args.device, Ranks())
        except RuntimeError:
            raise UsageError(f"--device {args.device!r} is not a device (cpu, cuda, cuda:1, ...)") from None
        except ValueError as e:
            raise UsageError(f"--{e}") from None
        options = cls(out, formats, ModelOptions.from_namespace(args), args.device, bool(args.overwrite))
        for path in options.paths().values():
            why = not_a_file_to_write(path)
            if why:
                raise UsageError(f"{path}{why}")
        existing = [str(path) for path in options.paths().values() if path.exists()]
        if existing and not options.overwrite:
            raise UsageError(f"{', '.join(existing)} exist(s): pass --overwrite to replace")
        return options

    def paths(self) -> dict:
        return {kind: self.out / FILE_NAMES[kind] for kind in (*self.formats, "json")}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="write a scorer as ONNX and/or an AOTInductor package, for use without Python",
        description="Writes the scoring of one candidate set per image (images, crops, objects, faces -> scores; "
        "batch size, candidate count and image size dynamic) to --out: scorer.onnx (onnxruntime and other "
        "ONNX runtimes), scorer.pt2 (AOTInductor, for the --device kind) and scorer.json (the inputs, the "
        "pre-processing and the steps the caller runs: candidates, object boxes, the face rule).")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--format", choices=[*FORMATS, "both"], default="onnx", help="what to write (default: onnx)")
    add_model_arguments(p)
    p.add_argument("--device", default="cpu", help="the device the AOTInductor package runs on (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace files already in --out")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    options = ExportOptions.from_namespace(args)
    paths = options.paths()
    if "onnx" in options.formats:
        import onnxscript  # noqa: F401  (torch.onnx needs it: fail before the slow part)
    from ..export import describe, export_program, write_aoti, write_description, write_onnx
    from ..models.exportable import SetScorer

    choice = load_model(options.model)
    scorer = SetScorer(choice.module)
    if "onnx" in options.formats:
        write_onnx(export_program(scorer), paths["onnx"], overwrite=options.overwrite)
        print(f"wrote {paths['onnx']}")
    if "aoti" in options.formats:
        write_aoti(export_program(scorer, options.device), paths["aoti"], overwrite=options.overwrite)
        print(f"wrote {paths['aoti']}")
    files = {kind: paths[kind].name for kind in options.formats}
    payload = describe(scorer, choice.description, files)
    payload["weights_digest"] = choice.digest
    write_description(payload, paths["json"], overwrite=options.overwrite)
    print(f"wrote {paths['json']}")
    return 0
