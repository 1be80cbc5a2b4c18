"""``s2c train`` (S2CNet on GAICD, the GAIC recipe, or on FCDB's real photos; also under torchrun) and
``s2c train-prior`` (the geometry prior on GAICD ratings). The command line only parses: :func:`options_from`
reads ``s2c train``'s options once into :class:`~s2c_ops.training.options.TrainOptions` for
:func:`~s2c_ops.training.loop.train`; the prior is :func:`~s2c_ops.training.prior.train_prior`."""
import argparse
from pathlib import Path
from typing import List

from ..models.config import OFFICIAL
from ..models.blend import BlendSetting
from ..training.options import MAX_PHOTOS_PER_STEP, TrainOptions
from ..files import not_a_folder_to_write
from ..distributed import rank_device, torchrun_ranks
from ..training.run import RunFolder
from .crop.args import int_arg
from .errors import UsageError

DESCRIPTION = (
    "Trains S2CNet on the folder --data names, into the run folder --out. GAICD (annotations/, bbox/, split.json, "
    "images/): the GAIC recipe (ImageNet MobileNetV2, frozen backbone BatchNorm, SmoothL1 on the normalised MOS, "
    "Adam). FCDB (train.json, or the original release's files): as the package's default model was trained, "
    "frozen-backbone epochs then optional fine-tuning, listwise and pair losses. Both evaluate --eval-split every "
    "epoch, save checkpoints, write log.csv and curves.png, and take --resume; torchrun -m s2c_ops.cli train runs it "
    "on several processes.")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ..cropping.proposals import list_proposers

    p.add_argument("--data", required=True, help="a GAICD folder (official layout) or an FCDB folder")
    p.add_argument("--out", required=True, help="run folder (weights, state, log.csv, curves.png, summary.json)")
    p.add_argument("--config", default="GAICv1", choices=sorted(OFFICIAL),
                   help="the S2CNet configuration to train (the official ones; default GAICv1)")
    p.add_argument("--epochs", type=int, help="epochs (GAICD default 80; FCDB: epochs on the frozen backbone, default 2)")
    p.add_argument("--lr", type=float, help="learning rate (GAICD default 1e-4, FCDB 3e-4)")
    p.add_argument("--eval-split", help="evaluated every epoch (GAICD default test; FCDB default val)")
    p.add_argument("--backbone-weights", default="imagenet",
                   help="'imagenet' (torchvision's file via its hub cache), a path to a torchvision MobileNetV2 state dict, or 'none'")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int_arg(0, 2**63 - 1), default=0,
                   help="seed of the weights' initialisation and the data order (default 0)")
    p.add_argument("--device", help="torch device (default: cuda when available, cuda:LOCAL_RANK under torchrun, else cpu)")
    fcdb = p.add_argument_group("FCDB")
    fcdb.add_argument("--finetune-epochs", type=int, default=0, help="epochs of the whole model on pixels after the frozen ones")
    fcdb.add_argument("--finetune-lr", type=float, default=3e-5, help="learning rate of the fine-tuning epochs (default 3e-5)")
    fcdb.add_argument("--temperature", type=float, default=0.05, help="of the listwise loss on the candidates' IoU")
    fcdb.add_argument("--pair-weight", type=float, default=0.5, help="weight of the judged pairs' loss")
    fcdb.add_argument("--sample", type=int, default=24, help="candidates of each protocol per photo and step")
    fcdb.add_argument("--photos-per-step", type=int_arg(1, MAX_PHOTOS_PER_STEP), default=4,
                      help=f"photos per optimiser step (default 4, at most {MAX_PHOTOS_PER_STEP}: a step holds "
                           "every photo's graph)")
    fcdb.add_argument("--proposer", default="default", choices=list_proposers(),
                      help="object boxes (the same as at inference)")
    fcdb.add_argument("--no-blend", dest="blend", action="store_false",
                      help="skip the blend with the geometry priors at the end (blend.safetensors)")
    fcdb.add_argument("--mirror", choices=("auto", "on", "off"), default="auto",
                      help="the blend scores the mirror image too (on), not (off), or whichever measures best (auto); "
                           "with --blend-setting, the setting says it (on or off must agree with it)")
    fcdb.add_argument("--train-split", choices=("fit", "train"), default="fit",
                      help="photos to train on: fit (all but the validation list; default) or train (all of them: "
                           "for the shipped weights once every setting is fixed; validation figures are then not "
                           "held out)")
    fcdb.add_argument("--blend-setting", metavar=BlendSetting.FORMAT,
                      help="the blend to write, instead of the best of the grid on --eval-split: FCDB prior weight, "
                           "GAICD prior weight, temperature ('none' for no decoding), the temperature of "
                           "candidates of one aspect ratio (default: T), the highest temperature of a photo "
                           "with faces (default: none), and 'mirror' last when S2CNet also scores the mirror "
                           "image (default: not); e.g. 1:0.25:0.7:2:1, the shipped model's")
    gaicd = p.add_argument_group("GAICD")
    gaicd.add_argument("--workers", type=int, default=0, help="DataLoader workers")


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("train", help="train S2CNet on GAICD or FCDB (also under torchrun)", description=DESCRIPTION)
    add_train_arguments(p)
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "train-prior", help="train the geometry prior on GAICD ratings (minutes on a CPU)",
        description="Trains the geometry prior (a small network on the crop's geometry alone, no pixels) on the "
        "ratings of GAICD's crops (a ranking loss within each image), prints validation metrics, and writes its "
        "weights: s2c crop and s2c eval take them with --weights.")
    p.add_argument("--data", required=True, help="a GAICD folder (official layout; its annotations, no pixels needed)")
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the validation draw (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of GAICD's train images held out for the validation metrics (default 0.2)")
    p.add_argument("--hidden", type=int, default=64, help="width of the network's hidden layer (default 64)")
    p.set_defaults(func=run_train_prior)


def options_from(args: argparse.Namespace) -> TrainOptions:
    """``s2c train``'s options, read here alone; a combination that cannot run is a :class:`UsageError`, and
    so is an --out that is a file or holds a run without --resume (a new run would replace it)."""
    out = Path(args.out)
    why = not_a_folder_to_write(out, "a run folder")
    if why:
        raise UsageError(f"--out {out}{why}")
    folder = RunFolder(out, (), ())
    if not args.resume and folder.holds_run():
        raise UsageError(f"--out {out} holds a run: pass --resume to continue it, or give another --out")
    if args.resume and folder.weights.exists() and not folder.state.exists():
        raise UsageError(f"--resume: {out} holds {folder.weights.name} but no {folder.state.name} to continue from "
                         "(starting again would replace the weights); give another --out")
    try:
        rank_device(args.device, torchrun_ranks())
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    mirror = {"auto": None, "on": True, "off": False}[args.mirror]
    try:
        setting = BlendSetting.parse(args.blend_setting) if args.blend_setting else None
    except ValueError as e:
        raise UsageError(f"--blend-setting: {e}") from None
    try:
        options = TrainOptions.for_data(
            args.data, args.out, epochs=args.epochs, lr=args.lr, eval_split=args.eval_split, config=args.config,
            backbone_weights=args.backbone_weights, resume=args.resume, seed=args.seed, device=args.device,
            workers=args.workers, finetune_epochs=args.finetune_epochs, finetune_lr=args.finetune_lr,
            temperature=args.temperature, pair_weight=args.pair_weight, sample=args.sample,
            photos_per_step=args.photos_per_step, proposer=args.proposer, train_split=args.train_split,
            blend=args.blend, mirror=mirror, blend_setting=setting)
    except ValueError as e:
        raise UsageError(str(e)) from None
    splits = _splits(options.data, options.kind)
    if options.eval_split not in splits:
        raise UsageError(f"--eval-split {options.eval_split}: {options.data} holds the splits {', '.join(splits)}")
    return options


def _splits(data: Path, kind: str) -> List[str]:
    """The splits the ``data`` folder holds; a split file that cannot be read is a usage error naming it."""
    try:
        if kind == "fcdb":
            from ..data.fcdb import fcdb_splits

            return fcdb_splits(data)
        from ..data.gaicd import read_split

        return list(read_split(Path(data) / "split.json"))
    except (OSError, ValueError) as e:
        raise UsageError(f"--data {data}: {e}") from None


def run_train(args: argparse.Namespace) -> int:
    from ..training.loop import train

    train(options_from(args), log=_log)
    return 0


def run_train_prior(args: argparse.Namespace) -> int:
    from ..training.prior import train_prior

    train_prior(args.data, args.out, epochs=args.epochs, seed=args.seed, val_fraction=args.val_fraction,
                hidden=args.hidden)
    return 0


def _log(line: str) -> None:
    print(line, flush=True)

