"""Training S2CNet on GAICD with the GAIC recipe: one image per step with all its rated crops, SmoothL1 on
the normalised MOS, Adam, the backbone's BatchNorm frozen, ImageNet MobileNetV2 start, evaluation every
epoch (:func:`~s2c_ops.evaluation.evaluate_gaicd`), checkpoints every epoch, resumable, under torchrun.
"""
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..evaluation import evaluate_gaicd
from ..models.config import ConfigLike
from ..models.official import load_imagenet_backbone
from ..models.s2cnet import S2CNet
from .run import Distributed, RunFolder, freeze_backbone_batchnorm, seed_epoch, summary_of

LOG_FIELDS = ["epoch", "loss", "srcc", "pcc", "acc5", "acc10", "seconds"]


def train_gaicd(data, out, *, config: ConfigLike = "GAICv1", epochs: int = 80, lr: float = 1e-4,
                eval_split: str = "test", backbone_weights: str = "imagenet", resume: bool = False, seed: int = 0,
                workers: int = 0, device: Optional[str] = None, log=print) -> Dict[str, Any]:
    """Trains S2CNet on the GAICD folder ``data`` into the run folder ``out`` and returns the summary (what
    ``summary.json`` holds). ``backbone_weights``: ``"imagenet"`` (torchvision's file through its hub
    cache), a path to a torchvision MobileNetV2 state dict, or ``"none"``. ``device`` ``None``: CUDA when
    available (``cuda:LOCAL_RANK`` under torchrun), else the CPU."""
    from ..data.gaicd import GAICD, collate, normalise_mos

    run = Distributed(device)
    folder = RunFolder(Path(out), LOG_FIELDS, ["loss", "srcc"])
    torch.manual_seed(seed)
    train_set = GAICD.with_images(data, "train", augment=True, generator=torch.Generator().manual_seed(seed + run.rank))
    eval_set = GAICD.with_images(data, eval_split) if run.rank == 0 else None
    if len(train_set) == 0:
        raise ValueError(f"no training images with pixels under {data}")

    saved = folder.load_state() if resume else None
    if saved is not None:
        model = S2CNet.load(folder.weights)
    else:
        model = S2CNet(config)
        if backbone_weights != "none":
            load_imagenet_backbone(model, backbone_weights)
    start_epoch, rows = (int(saved["epoch"]), list(saved["rows"])) if saved else (0, [])
    model.to(run.device)
    freeze_backbone_batchnorm(model)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    if saved is not None:
        optimiser.load_state_dict(saved["optimiser"])
    net = DistributedDataParallel(model) if run.world > 1 else model

    sampler = DistributedSampler(train_set, num_replicas=run.world, rank=run.rank, shuffle=True, seed=seed)
    loader = DataLoader(train_set, batch_size=1, sampler=sampler, collate_fn=collate, num_workers=workers)
    for epoch in range(start_epoch, epochs):
        started = time.time()
        seed_epoch(seed, run.rank, epoch, *([train_set.generator] if train_set.generator is not None else []))
        sampler.set_epoch(epoch)
        model.train()
        freeze_backbone_batchnorm(model)
        total = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            scores = net(batch["image"].to(run.device), [b.float().to(run.device) for b in batch["crop_boxes"]],
                         [b.float().to(run.device) for b in batch["object_boxes"]])
            loss = F.smooth_l1_loss(scores, normalise_mos(torch.cat(batch["mos"]).float()).to(run.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += torch.tensor([float(loss.detach()), 1.0], dtype=torch.float64)
        total = run.sum(total)
        row: Dict[str, Any] = {"epoch": epoch + 1, "loss": float(total[0] / total[1])}
        if run.rank == 0:
            model.eval()
            m = evaluate_gaicd(model, eval_set, run.device).compute() if len(eval_set) else {}
            row.update({k: m.get(k, float("nan")) for k in ("srcc", "pcc", "acc5", "acc10")})
            row["seconds"] = round(time.time() - started, 2)
            rows.append(row)
            folder.save_epoch(model, {"epoch": epoch + 1, "optimiser": optimiser.state_dict()}, rows)
            log(f"epoch {epoch + 1}/{epochs} loss {row['loss']:.4f} srcc {row['srcc']:.3f} "
                f"acc5 {row['acc5']:.1f} acc10 {row['acc10']:.1f} ({row['seconds']} s)")
        run.barrier()
    summary = summary_of(model, run, rows, epochs=epochs)
    if run.rank == 0:
        folder.write_summary(summary)
    run.close()
    return summary
