"""Training S2CNet on GAICD with the GAIC recipe: one image per step with all its rated crops, SmoothL1 on
the normalised MOS, Adam, the backbone's BatchNorm frozen, ImageNet MobileNetV2 start, evaluation every
epoch (:func:`~s2c_ops.evaluation.evaluate_gaicd`), checkpoints every epoch, resumable, under torchrun.
:class:`GAICDTask` is this for :func:`~.loop.train`.
"""
from typing import Any, Callable, Dict, Iterator, List

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from ..evaluation import evaluate_gaicd
from ..models.config import S2CNetConfig, resolve_config
from ..models.s2cnet import S2CNet
from .options import TrainOptions
from .run import Distributed, RunFolder, Stage

LOG_FIELDS = ["epoch", "loss", "srcc", "pcc", "acc5", "acc10", "seconds"]


class GAICDTask:
    """GAICD for :func:`~.loop.train`: the train split's images (augmented; each rank its share of every
    epoch's order), ``eval_split`` measured on rank 0, one stage of Adam on every parameter but the
    backbone's BatchNorm."""

    log_fields = LOG_FIELDS
    curves = ("loss", "srcc")
    weights_dtype = None
    seconds_digits = 2

    def __init__(self, options: TrainOptions, run: Distributed, log: Callable[[str], None]) -> None:
        from ..cropping.transforms import OfficialPreprocess
        from ..data.gaicd import GAICD

        self.options, self.run, self.log = options, run, log
        generator = torch.Generator().manual_seed(options.seed + run.rank)
        # The model's own resize (its config's antialias), as the Cropper and s2c eval resize for it.
        pre = OfficialPreprocess(antialias=self.config().antialias)
        self.train_set = GAICD.with_images(options.data, "train", augment=True, generator=generator, preprocess=pre)
        self.eval_set = GAICD.with_images(options.data, options.eval_split, preprocess=pre) if run.rank == 0 else None
        if len(self.train_set) == 0:
            raise ValueError(f"no training images with pixels under {options.data}")
        self.generators = [self.train_set.generator] if self.train_set.generator is not None else []

    def config(self) -> S2CNetConfig:
        return resolve_config(self.options.config)

    def prepare(self, model: S2CNet, folder: RunFolder) -> None:
        from ..data.gaicd import collate

        o, run = self.options, self.run
        self.sampler = DistributedSampler(self.train_set, num_replicas=run.world, rank=run.rank, shuffle=True,
                                          seed=o.seed)
        self.loader = DataLoader(self.train_set, batch_size=1, sampler=self.sampler, collate_fn=collate,
                                 num_workers=o.workers)

    def stages(self, model: S2CNet) -> List[Stage]:
        params = [p for p in model.parameters() if p.requires_grad]
        return [Stage("train", self.options.epochs, params, torch.optim.Adam(params, lr=self.options.lr))]

    def losses(self, model: S2CNet, stage: Stage, epoch: int, seed: int) -> Iterator[torch.Tensor]:
        from ..data.gaicd import normalise_mos

        device = self.run.device
        self.sampler.set_epoch(epoch)
        for batch in self.loader:
            scores = model(batch["image"].to(device), [b.float().to(device) for b in batch["crop_boxes"]],
                           [b.float().to(device) for b in batch["object_boxes"]])
            yield F.smooth_l1_loss(scores, normalise_mos(torch.cat(batch["mos"]).float()).to(device))

    def evaluate(self, model: S2CNet, stage: Stage) -> Dict[str, float]:
        model.eval()
        m = evaluate_gaicd(model, self.eval_set, self.run.device).compute() if len(self.eval_set) else {}
        return {k: m.get(k, float("nan")) for k in ("srcc", "pcc", "acc5", "acc10")}

    def epoch_line(self, row: Dict[str, Any], epochs: int) -> str:
        return (f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} srcc {row['srcc']:.3f} "
                f"acc5 {row['acc5']:.1f} acc10 {row['acc10']:.1f} ({row['seconds']} s)")

    def finish(self, model: S2CNet, folder: RunFolder) -> Dict[str, Any]:
        return {"epochs": self.options.epochs}
