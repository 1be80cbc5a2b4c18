"""``s2c eval``: a model's quality on GAICD (the published ranking metrics) or FCDB (IoU and BDE of the top-1
crop, ratio given and free form, beside the whole photo and the centred crop), told apart by the folder."""
import argparse
import json
import os
import sys
from pathlib import Path

from ..distributed import Ranks, rank_device
from ..files import not_a_file_to_write, write_json_atomic
from .crop.args import MAX_BATCH_SIZE, int_arg
from .errors import Failure, UsageError
from .models import ModelOptions, add_model_arguments, load_model


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate a model on GAICD (ranking metrics) or FCDB (IoU/BDE of the best crop)",
        description="GAICD (annotations/, bbox/, split.json, images/): SRCC, PCC, Acc and wAcc of the scores of "
        "the rated crops. FCDB (train.json, or the original release's cropping_*_set.json): IoU and BDE of the "
        "top-1 crop, with the candidates of the human crop's ratio and with the official 12x12 grid, beside the "
        "whole photo and the centred largest crop of the ratio.")
    p.add_argument("--data", required=True, help="a GAICD or FCDB folder")
    p.add_argument("--split",
                   help="GAICD: train or test; FCDB: train, test (original release), val (the package's validation "
                        "list) or fit (train without val). Default: test, or on an FCDB folder without a test "
                        "split (this project's layout) val")
    add_model_arguments(p)
    p.add_argument("--proposer", help="object-box proposer on FCDB (default: the default proposer)")
    p.add_argument("--json", metavar="OUT", help="write the metrics and per-image results here")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--batch-size", type=int_arg(1, MAX_BATCH_SIZE), default=16, help="photos per model call on FCDB (default 16)")
    p.set_defaults(func=run)
    return p


def _progress(desc: str):
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=desc, unit="image", disable=not sys.stderr.isatty())


def _print_gaicd(metrics: dict, label: str) -> None:
    print(f"{label}: {metrics['images']} images")
    keys = ["srcc", "pcc", "acc1_5", "acc2_5", "acc3_5", "acc4_5", "acc5", "acc1_10", "acc2_10", "acc3_10", "acc4_10", "acc10"]
    print("| " + " | ".join(k.replace("_", "/") for k in keys) + " |")
    print("| " + " | ".join(["---:"] * len(keys)) + " |")
    print("| " + " | ".join(f"{metrics[k]:.3f}" if k in ("srcc", "pcc") else f"{metrics[k]:.1f}" for k in keys) + " |")


def run(args: argparse.Namespace) -> int:
    model_options = ModelOptions.from_namespace(args)
    from ..data.fcdb import fcdb_splits, is_fcdb

    try:
        device = rank_device(args.device, Ranks())
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    if args.json:
        _check_json(args.json)
    fcdb = is_fcdb(args.data)
    if fcdb:
        splits = fcdb_splits(args.data)
    else:
        from ..data.gaicd import read_split

        splits = list(read_split(Path(args.data) / "split.json"))
    split = args.split or ("test" if "test" in splits else "val")
    if split not in splits:
        raise UsageError(f"--split {split}: {args.data} holds the {'FCDB' if fcdb else 'GAICD'} splits "
                         f"{', '.join(splits)}")
    choice = load_model(model_options)
    result = _fcdb(args, split, choice, device) if fcdb else _gaicd(args, split, choice, device)
    if args.json:
        write_json_atomic(args.json, result, follow_symlinks=True)  # a link to an earlier result stays one
    return 0


def _check_json(path: str) -> None:
    """--json OUT may be new, or the result of an earlier ``s2c eval`` (replaced); anything else (a folder, a
    path below a file, a photo or the data's annotations given by mistake) is a usage error, before any work."""
    why = not_a_file_to_write(path)
    if why:
        raise UsageError(f"--json {path}{why}")
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                head = f.read(1)
                earlier = json.loads(head + f.read()) if head == b"{" else None  # a photo is not read whole
        except (OSError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and "metrics" in earlier):
            raise UsageError(f"--json {path} exists and is not a result of s2c eval: it is never replaced; give "
                             "another --json OUT")


def _fcdb(args, split: str, choice, device) -> dict:
    from ..cropping.cropper import Cropper
    from ..cropping.proposals import create_proposer
    from ..data.fcdb import FCDB
    from ..evaluation import evaluate_fcdb, format_fcdb

    proposer = create_proposer(args.proposer) if args.proposer else None
    cropper = Cropper(choice.module, proposer, batch_size=args.batch_size, device=device)
    dataset = FCDB(args.data, split, preprocess=cropper.preprocess)
    print(f"FCDB {split}: {len(dataset)} photos; {dataset.report}", file=sys.stderr)
    if not any(photo.crop is not None for photo in dataset.photos):
        raise Failure(f"the {split} split of {args.data} has no photo with a human crop to evaluate")
    metrics = evaluate_fcdb(cropper, dataset, method=choice.description, progress=_progress("eval"))
    result = metrics.to_dict()
    print("\n".join(format_fcdb(result["metrics"])))
    return result


def _gaicd(args, split: str, choice, device) -> dict:
    from ..cropping.transforms import OfficialPreprocess
    from ..data.gaicd import GAICD, read_split
    from ..models.scorer import ability, inference_copy

    if not ability(choice.module, "reads_pixels"):  # geometry only: every rated image, no pixels needed
        from ..data.metrics import GAICMetrics
        from ..training.prior import load_geometry, prior_scores

        metrics = GAICMetrics()
        images = load_geometry(args.data, split)
        if not images:
            raise Failure(f"the {split} split of {args.data} has no image to evaluate")
        for image in _progress("eval prior")(images):
            metrics.update(image["id"], prior_scores(choice.module, image), image["mos"])
    else:
        from ..evaluation import evaluate_gaicd

        model = inference_copy(choice.module)
        dataset = GAICD.with_images(args.data, split, preprocess=OfficialPreprocess.for_model(choice.module))
        if not len(dataset):
            raise Failure(f"the {split} split of {args.data} has no image to evaluate")
        missing = len(read_split(Path(args.data) / "split.json")[split]) - len(dataset)
        if missing:
            print(f"note: {missing} images of the {split} split have no pixels here; evaluating {len(dataset)}",
                  file=sys.stderr)
        metrics = evaluate_gaicd(model.to(device), dataset, device, progress=_progress("eval"))
    result = metrics.to_dict()
    _print_gaicd(result["metrics"], choice.description)
    return result
