"""The package's default scorer: S2CNet and two geometry priors together, decoded for the expected IoU.

Per image, over its candidate crops:

1. ``raw = mean(S2CNet(photo), S2CNet(mirror image)) + geometry_weight * fcdb_prior + gaicd_weight *
   gaicd_prior``. S2CNet (trained on FCDB's photos) judges what the crop holds; the FCDB prior (the
   geometry prior's network trained on FCDB's human crops) where people put a crop; the GAICD prior
   (the shipped geometry prior, trained on GAICD's ratings) where a crop sits and what it cuts. The mirror
   image averages out S2CNet's left-right bias.
2. With a ``temperature``, each candidate's score is its expected IoU with the best crop: ``IoU(candidates,
   candidates) @ softmax(raw / temperature)`` (minimum-Bayes-risk decoding: a candidate that overlaps
   the likely ones beats an isolated peak). Scores then lie in [0, 1] and depend on the candidate set:
   ``groups=`` splits an image's candidates into sets decoded on their own (one per ratio, so that a
   ratio's crop never depends on the other ratios asked for).

The weights and the temperature were chosen on the FCDB validation photos (``s2c train`` on FCDB writes the
measurements to ``blend.json``; see the README).
"""
import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..ops.boxes import BoxesLike, box_iou, flip_boxes
from .config import S2CNetConfig, resolve_config
from .prior import GeometryPrior, PriorConfig
from .s2cnet import S2CNet
from .scorer import ScorerModule, check_scorer_inputs
from .weights import weights_format


@dataclass(frozen=True)
class BlendConfig:
    s2cnet: Dict[str, Any] = field(default_factory=lambda: asdict(S2CNetConfig(antialias=True)))
    fcdb_prior: Dict[str, Any] = field(default_factory=lambda: asdict(PriorConfig()))
    gaicd_prior: Dict[str, Any] = field(default_factory=lambda: asdict(PriorConfig()))
    geometry_weight: float = 1.0
    gaicd_weight: float = 0.25
    mirror: bool = True
    temperature: Optional[float] = 1.0

    @property
    def bbox_num(self) -> int:
        return resolve_config(self.s2cnet).bbox_num

    @property
    def antialias(self) -> bool:
        return resolve_config(self.s2cnet).antialias


def expected_iou(crops: Tensor, raw: Tensor, temperature: float, counts: Optional[Sequence[int]] = None) -> Tensor:
    """Each crop's expected IoU with the best crop of its image when the best is distributed as
    ``softmax(raw / temperature)`` over the image's crops: ``crops`` rois (K, 5) of any images, ``raw``
    (K,). Images are taken one at a time (their crop counts differ). ``counts``, when ``crops`` hold the
    images' crops image by image (as a list of per-image boxes gives them), is how many each has: known
    on the host, the images are then split off without reading the rois back (a GPU never waits)."""
    if counts is not None:
        parts = zip(crops.split(counts), raw.split(counts))
        return torch.cat([_expected_iou(c[:, 1:], r, temperature) for c, r in parts])
    out = torch.empty_like(raw)
    index = crops[:, 0]
    for image in torch.unique(index):
        mine = (index == image).nonzero().squeeze(1)
        out[mine] = _expected_iou(crops[mine, 1:], raw[mine], temperature)
    return out


def _expected_iou(boxes: Tensor, raw: Tensor, temperature: float) -> Tensor:
    """:func:`expected_iou` of one image's crops ``boxes`` (N, 4)."""
    return box_iou(boxes, boxes) @ torch.softmax(raw / temperature, 0)


def blend_scores(views: Sequence[Tensor], priors: Sequence[Tuple[float, Optional[Tensor]]], crops: Tensor,
                 temperature: Optional[float], counts: Optional[Sequence[int]] = None) -> Tensor:
    """The module docstring's formula, the one :class:`S2CNetWithPriors` and the training's blend grid
    use: the mean of S2CNet's scores of the ``views`` (the photo, and its mirror image), plus each prior's
    scores times its weight (``(weight, scores)``; scores may be ``None`` for a weight of 0), then with a
    ``temperature`` the expected IoU of ``crops`` (:func:`expected_iou`)."""
    raw = sum(views) / len(views)
    for weight, scores in priors:
        if weight:
            raw = raw + weight * scores
    return raw if temperature is None else expected_iou(crops, raw, temperature, counts)


@weights_format("s2cnet-blend/1", BlendConfig, "S2CNet + geometry priors")
class S2CNetWithPriors(ScorerModule):
    """A scorer (:class:`~s2c_ops.models.scorer.Scorer`): see the module docstring. Its weights file holds
    the three models (``save`` / ``load``; the shipped file is float16)."""

    def __init__(self, config: BlendConfig = BlendConfig()) -> None:
        super().__init__()
        self.config = config
        self.s2cnet = S2CNet(resolve_config(config.s2cnet))
        self.fcdb_prior = GeometryPrior(PriorConfig(**config.fcdb_prior))
        self.gaicd_prior = GeometryPrior(PriorConfig(**config.gaicd_prior))
        if not self.fcdb_prior.bbox_num == self.gaicd_prior.bbox_num == self.s2cnet.bbox_num:
            raise ValueError("the priors and S2CNet must take the same number of object boxes")

    @classmethod
    def of(cls, s2cnet: S2CNet, fcdb_prior: GeometryPrior, gaicd_prior: GeometryPrior, *, geometry_weight: float,
           gaicd_weight: float, temperature: Optional[float], mirror: bool = True) -> "S2CNetWithPriors":
        """The blend of trained models (copied)."""
        config = BlendConfig(asdict(s2cnet.config), asdict(fcdb_prior.config), asdict(gaicd_prior.config),
                             float(geometry_weight), float(gaicd_weight), mirror,
                             None if temperature is None else float(temperature))
        blend = cls(config)
        for mine, theirs in ((blend.s2cnet, s2cnet), (blend.fcdb_prior, fcdb_prior), (blend.gaicd_prior, gaicd_prior)):
            mine.load_state_dict(theirs.state_dict())
        return blend.eval()

    decodes_candidates = True

    def forward(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike, *,
                groups: Optional[Sequence[Sequence[int]]] = None) -> Tensor:
        """Scores of ``crop_boxes``; ``groups`` (with a list of per-image boxes): for each image, the sizes
        of the consecutive groups its candidates are decoded in (default: one group per image)."""
        crops, objects = check_scorer_inputs(images, crop_boxes, object_boxes, self.bbox_num, min_side=32)
        counts = [len(b) for b in crop_boxes] if isinstance(crop_boxes, (list, tuple)) else None
        if groups is not None:
            if counts is None or len(groups) != len(counts) or any(sum(g) != n for g, n in zip(groups, counts)):
                raise ValueError("groups needs crop_boxes as a list, one list of group sizes per image, each "
                                 "summing to that image's number of crops")
            counts = [int(n) for g in groups for n in g]
        net, c = self.s2cnet, self.config
        size = images.shape[-2:]
        views = [net.score(net.features(images), crops, objects, size)]
        if c.mirror:
            width = images.shape[-1]
            mirrored = [torch.cat([r[:, :1], flip_boxes(r[:, 1:], width)], 1) for r in (crops, objects)]
            views.append(net.score(net.features(images.flip(-1)), *mirrored, size))
        priors = [(weight, prior(images, crops, objects) if weight else None)
                  for weight, prior in ((c.geometry_weight, self.fcdb_prior), (c.gaicd_weight, self.gaicd_prior))]
        return blend_scores(views, priors, crops, c.temperature, counts)

    def fused(self) -> "S2CNetWithPriors":
        """An inference copy with S2CNet's :meth:`~s2c_ops.S2CNet.fused` layers."""
        blend = copy.deepcopy(self).eval()
        blend.s2cnet = self.s2cnet.fused()
        blend.inference_only = True
        return blend
