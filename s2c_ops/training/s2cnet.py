"""Training S2CNet on GAICD with the GAIC recipe (DESIGN.md section 2), on one process or under torchrun.

``s2c train --data DIR --out RUN`` (or ``torchrun --nproc_per_node=N -m s2c_ops.train --data DIR --out
RUN``): ImageNet-initialised MobileNetV2 backbone with its BatchNorm frozen (one image per step), all
annotated crops of an image per step, SmoothL1 between the scores and the normalised MOS, Adam, the
GAICD metrics on the evaluation split after every epoch. The run folder holds ``model.safetensors``
(the latest weights and config), ``state.pt`` (optimiser and progress, for ``--resume``), ``log.csv``
and ``curves.png`` (loss and SRCC per epoch), and ``summary.json``.

Under torchrun each rank trains on its shard of the images (gloo on the CPU, nccl on GPUs) through
DistributedDataParallel; rank 0 evaluates and writes the run folder.
"""
import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..files import write_atomic
from ..models.official import load_imagenet_backbone
from ..models.config import OFFICIAL
from ..models.s2cnet import S2CNet

LOG_FIELDS = ["epoch", "loss", "srcc", "pcc", "acc5", "acc10", "seconds"]


def freeze_backbone_batchnorm(model: S2CNet) -> None:
    """BatchNorm statistics and affine parameters of the backbone stay as initialised."""
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)


def evaluate(model: S2CNet, dataset, device: torch.device) -> Dict[str, float]:
    """GAICD metrics of ``model`` on a pixel dataset (one image per call)."""
    from ..data.metrics import GAICMetrics

    metrics = GAICMetrics()
    model.eval()
    with torch.no_grad():
        for item in dataset:
            scores = model(item["image"][None].to(device), [item["crop_boxes"].float().to(device)],
                           [item["object_boxes"].float().to(device)])
            metrics.update(item["id"], scores.float().cpu(), item["mos"])
    return metrics.compute()


def parameters_digest(model: torch.nn.Module) -> str:
    """A hash of every parameter and buffer (to check that ranks hold the same weights)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def write_log(path: Path, rows: List[Dict[str, float]], fields: List[str]) -> None:
    """The per-epoch rows as a CSV file, rewritten atomically."""

    def writer(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            table = csv.DictWriter(f, fieldnames=fields)
            table.writeheader()
            table.writerows(rows)

    write_atomic(path, writer)


def plot_curves(rows: List[Dict[str, float]], path: Path) -> None:
    """Loss and SRCC per epoch as a PNG (drawn with Pillow)."""
    from PIL import Image, ImageDraw

    width, height, pad = 640, 360, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="black")
    epochs = [r["epoch"] for r in rows]
    series = [("loss", (200, 40, 40)), ("srcc", (40, 80, 200))]
    for i, (key, colour) in enumerate(series):
        values = [r[key] for r in rows if r.get(key) is not None and r[key] == r[key]]
        xs = [r["epoch"] for r in rows if r.get(key) is not None and r[key] == r[key]]
        if not values:
            continue
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        first, last = min(epochs), max(epochs)
        points = [
            (pad + (x - first) / max(last - first, 1) * (width - 2 * pad), height - pad - (v - lo) / span * (height - 2 * pad))
            for x, v in zip(xs, values)
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for p in points:
            draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
        draw.text((pad + 5 + 200 * i, 12), f"{key}: {values[-1]:.4f} (range {lo:.3f}..{hi:.3f})", fill=colour)
    draw.text((width // 2 - 20, height - pad + 10), f"epoch {min(epochs)}..{max(epochs)}", fill="black")
    write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))


def _setup_distributed() -> (int, int):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(args: argparse.Namespace) -> Dict:
    from ..data.gaicd import GAICD, collate, normalise_mos

    rank, world = _setup_distributed()
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    run = Path(args.out)
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    train_set = GAICD.with_images(args.data, "train", augment=True, generator=torch.Generator().manual_seed(args.seed + rank))
    eval_set = GAICD.with_images(args.data, args.eval_split) if rank == 0 else None
    if len(train_set) == 0:
        raise ValueError(f"no training images with pixels under {args.data}")

    model = S2CNet(args.config)
    state_path, weights_path = run / "state.pt", run / "model.safetensors"
    start_epoch, rows = 0, []
    if args.resume and weights_path.exists():
        model = S2CNet.load(weights_path)
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        start_epoch, rows = int(saved["epoch"]), list(saved["rows"])
    elif args.backbone_weights != "none":
        load_imagenet_backbone(model, args.backbone_weights)
    model.to(device)
    model.train()
    freeze_backbone_batchnorm(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=args.lr)
    if args.resume and state_path.exists():
        optimiser.load_state_dict(saved["optimiser"])
    net = DistributedDataParallel(model) if world > 1 else model

    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=1, sampler=sampler, collate_fn=collate, num_workers=args.workers)
    for epoch in range(start_epoch, args.epochs):
        started = time.time()
        sampler.set_epoch(epoch)
        model.train()
        freeze_backbone_batchnorm(model)
        total = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            scores = net(batch["image"].to(device), [b.float().to(device) for b in batch["crop_boxes"]],
                         [b.float().to(device) for b in batch["object_boxes"]])
            target = normalise_mos(torch.cat(batch["mos"]).float()).to(device)
            loss = F.smooth_l1_loss(scores, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += torch.tensor([float(loss.detach()), 1.0], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(total)
        row = {"epoch": epoch + 1, "loss": float(total[0] / total[1])}
        if rank == 0:
            m = evaluate(model, eval_set, device) if len(eval_set) else {}
            row.update({k: m.get(k, float("nan")) for k in ("srcc", "pcc", "acc5", "acc10")})
            row["seconds"] = round(time.time() - started, 2)
            rows.append(row)
            model.save(weights_path)
            state = {"epoch": epoch + 1, "rows": rows, "optimiser": optimiser.state_dict()}
            write_atomic(state_path, lambda tmp: torch.save(state, tmp))
            write_log(run / "log.csv", rows, LOG_FIELDS)
            plot_curves(rows, run / "curves.png")
            print(f"epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f} srcc {row['srcc']:.3f} "
                  f"acc5 {row['acc5']:.1f} acc10 {row['acc10']:.1f} ({row['seconds']} s)", flush=True)
        if world > 1:
            dist.barrier()

    digest = parameters_digest(model)
    digests = [digest]
    if world > 1:
        digests = [None] * world
        dist.all_gather_object(digests, digest)
    summary = {"epochs": args.epochs, "world_size": world, "config": model.config.to_dict(),
               "rank_digests": digests, "ranks_in_sync": len(set(digests)) == 1, "last": rows[-1] if rows else None}
    if rank == 0:
        (run / "summary.json").write_text(json.dumps(summary, indent=1))
    if world > 1:
        dist.destroy_process_group()
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="GAICD folder (official layout)")
    p.add_argument("--out", required=True, help="run folder (weights, state, log.csv, curves.png)")
    p.add_argument("--config", default="GAICv1", choices=sorted(OFFICIAL))
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-split", default="test", choices=["train", "test"])
    p.add_argument("--backbone-weights", default="imagenet",
                   help="'imagenet' (torchvision's file via its hub cache), a path to a torchvision MobileNetV2 state dict, or 'none'")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="s2c_ops.train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        train(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"s2c train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
