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
   ratio's crop never depends on the other ratios asked for). A set whose crops all have one aspect
   ratio (what ``Cropper.crop(photo, ratio)`` scores) is decoded at ``ratio_temperature`` when it is
   given: on FCDB's validation photos such sets gain from a softer distribution than free-form sets
   (the official grid, many aspect ratios) do (docs/models.md). With a ``face_temperature``, the sets of an
   image in which the proposer found faces are decoded at no more than it: a softer distribution pulls the
   crop towards the middle of the likely ones, which trims people at a group's edges (the faces the
   detector missed among them); a sharper one keeps the model's own framing of them.
3. With a ``shortlist`` of N, S2CNet scores only each set's N candidates the priors rank highest; the others
   stay out of the softmax (weight 0) but are still decoded, by their IoU with the likely crops. S2CNet's
   graph stage, the costliest part after the backbone, scales with the candidates it scores; with the
   shipped N = 64 the FCDB validation figures are those of scoring every candidate (docs/models.md).
4. In an image wider or taller than :data:`PRIOR_MAX_ASPECT` (a panorama) the priors neither score nor
   shortlist: they learned from photos no wider than about 3:1, and beyond it their preference for the
   middle of a photo took small crops off the photo's content. S2CNet alone scores there, its shortlist a
   set's first N candidates (the Cropper's candidates come largest first, at every position).

The weights, the temperatures and the mirror image make a :class:`BlendSetting` (written
``1:0.25:0.7:2:1``, the shipped one); :class:`BlendConfig` holds it with the three models' configurations and
the shortlist. They were chosen on the FCDB validation photos (``s2c train`` on FCDB writes the measurements
to ``blend.json``; see docs/models.md). ``S2CNetWithPriors.with_setting`` tries another on trained models.
"""
import copy
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..ops.boxes import BoxesLike, batched_rois, box_iou, clamp_to_image, flip_boxes, image_extent
from ..precision import full_precision
from .config import S2CNetConfig, resolve_config
from .prior import GeometryPrior, PriorConfig
from .s2cnet import S2CNet
from .scorer import ScorerModule, check_scorer_inputs
from .weights import weights_format


#: The candidates of a set S2CNet scores (module docstring, step 3).
SHORTLIST = 64

#: The widest (or tallest) image, in short sides, whose crops the priors judge (module docstring, step 4;
#: FCDB's widest photo is 2.95:1).
PRIOR_MAX_ASPECT = 3.0


def priors_judge(size: Sequence[int]) -> bool:
    """Whether the priors judge the crops of an image of ``size`` (height, width): :data:`PRIOR_MAX_ASPECT`."""
    height, width = size
    return max(height, width) <= PRIOR_MAX_ASPECT * min(height, width)


def priors_judge_on(like: Tensor, size: Sequence[int]) -> Tensor:
    """:func:`priors_judge` as a 0-d bool tensor on ``like``'s device, for a graph (symbolic sizes stay symbolic)."""
    extent = image_extent(like, size)
    return extent.max() <= PRIOR_MAX_ASPECT * extent.min()


@dataclass(frozen=True)
class BlendSetting:
    """How the blend scores (module docstring): ``geometry_weight`` (the FCDB prior's) and ``gaicd_weight``
    (the GAICD prior's), numbers >= 0; ``temperature`` (``None``: no decoding, the raw blend);
    ``ratio_temperature``, that of candidate sets of one aspect ratio (``None``: ``temperature``);
    ``face_temperature``, the highest of the sets of an image with faces (``None``: no bound); temperatures
    > 0, the last two only with a ``temperature``; ``mirror``: S2CNet also scores the mirror image (twice
    the backbone's time). Numbers are stored as floats.

    As text (:meth:`parse`, ``str``; ``s2c train --blend-setting``): ``G:P:T[:TR[:TF]][:mirror]``, the fields
    in that order, ``none`` for a temperature left out, and a last field ``mirror`` (or ``nomirror``, the
    default) for the mirror image: ``1:0.25:0.7:2:1`` is the shipped model's setting (FCDB prior 1, GAICD
    prior 0.25, temperature 0.7, 2 for one aspect ratio, at most 1 with faces, no mirror image)."""

    geometry_weight: float
    gaicd_weight: float
    temperature: Optional[float]
    ratio_temperature: Optional[float] = None
    face_temperature: Optional[float] = None
    mirror: bool = False

    #: The text form (class docstring).
    FORMAT = "G:P:T[:TR[:TF]][:mirror]"

    def __post_init__(self) -> None:
        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("geometry_weight", "gaicd_weight"):
            value = getattr(self, name)
            if not (number(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("temperature", "ratio_temperature", "face_temperature"):
            value = getattr(self, name)
            if value is not None and not (number(value) and value > 0):
                raise ValueError(f"{name} must be None or > 0, got {value!r}")
            object.__setattr__(self, name, None if value is None else float(value))
        for name in ("ratio_temperature", "face_temperature"):
            if self.temperature is None and getattr(self, name) is not None:
                raise ValueError(f"{name} needs a temperature (without one nothing is decoded)")
        if not isinstance(self.mirror, bool):
            raise ValueError(f"mirror must be True or False, got {self.mirror!r}")

    @classmethod
    def parse(cls, text: str) -> "BlendSetting":
        """The setting written ``G:P:T[:TR[:TF]][:mirror]`` (class docstring; the inverse of ``str``); a
        ValueError names what is wrong."""
        parts = [part.strip().lower() for part in str(text).split(":")]
        mirror = {"mirror": parts.pop() == "mirror"} if parts[-1] in ("mirror", "nomirror") else {}
        if not 3 <= len(parts) <= 5:
            raise ValueError(f"{text!r} is not a blend setting: expected {cls.FORMAT} (e.g. 1:0.25:0.7:2:1)")
        try:
            if any("_" in part for part in parts):  # float() reads "1_0" as 10
                raise ValueError
            values = [None if part == "none" else float(part) for part in parts]
        except ValueError:
            raise ValueError(f"{text!r} is not a blend setting: G, P, T, TR and TF are numbers (the temperatures "
                             "may be none), then mirror or nomirror") from None
        try:
            return cls(*values, **mirror)
        except ValueError as e:
            raise ValueError(f"{text!r} is not a blend setting: {e}") from None

    def __str__(self) -> str:
        """``G:P:T[:TR[:TF]][:mirror]`` (:meth:`parse` reads it back): the temperatures at the end that are
        ``None`` left out, ``mirror`` only when it is on."""
        def text(value: Optional[float]) -> str:
            return "none" if value is None else repr(value).removesuffix(".0")

        values = [self.geometry_weight, self.gaicd_weight, self.temperature, self.ratio_temperature,
                  self.face_temperature]
        while len(values) > 3 and values[-1] is None:
            values.pop()
        return ":".join([text(v) for v in values] + (["mirror"] if self.mirror else []))


#: The fields of a :class:`BlendSetting` (:class:`BlendConfig` holds them under the same names).
SETTING_FIELDS = tuple(f.name for f in fields(BlendSetting))


@dataclass(frozen=True)
class BlendConfig:
    """A blend model's configuration (what its weights file stores): the three models', the fields of its
    :class:`BlendSetting` (:attr:`setting`; :meth:`with_setting`), and the ``shortlist``."""

    s2cnet: Dict[str, Any] = field(default_factory=lambda: asdict(S2CNetConfig(antialias=True)))
    fcdb_prior: Dict[str, Any] = field(default_factory=lambda: asdict(PriorConfig()))
    gaicd_prior: Dict[str, Any] = field(default_factory=lambda: asdict(PriorConfig()))
    geometry_weight: float = 1.0
    gaicd_weight: float = 0.25
    mirror: bool = True
    temperature: Optional[float] = 1.0
    #: S2CNet scores each candidate set's ``shortlist`` best by the priors (None: all of them).
    shortlist: Optional[int] = SHORTLIST
    #: The temperature of sets of one aspect ratio (None: ``temperature``).
    ratio_temperature: Optional[float] = None
    #: The highest temperature of the sets of an image with faces (None: no bound).
    face_temperature: Optional[float] = None

    def __post_init__(self) -> None:
        if self.shortlist is not None and (isinstance(self.shortlist, bool) or not isinstance(self.shortlist, int)
                                           or self.shortlist < 1):
            raise ValueError(f"BlendConfig.shortlist must be None or a positive int, got {self.shortlist!r}")
        self.setting  # noqa: B018 (the setting's checks)

    @property
    def setting(self) -> BlendSetting:
        """The weights, temperatures and mirror image of this configuration."""
        return BlendSetting(**{name: getattr(self, name) for name in SETTING_FIELDS})

    def with_setting(self, setting: BlendSetting) -> "BlendConfig":
        """This configuration with ``setting``'s fields."""
        if not isinstance(setting, BlendSetting):
            raise TypeError(f"setting must be a BlendSetting (BlendSetting.parse reads one), got {setting!r}")
        return replace(self, **asdict(setting))

    @property
    def bbox_num(self) -> int:
        return resolve_config(self.s2cnet).bbox_num

    @property
    def antialias(self) -> bool:
        return resolve_config(self.s2cnet).antialias


def candidate_sets(crops: Tensor, counts: Optional[Sequence[int]] = None) -> List[Tensor]:
    """The rows of each candidate set of ``crops`` (rois (K, 5) of any images): ``counts``, when the rows
    hold the sets one after another, is their sizes (known on the host, so a GPU never waits); without,
    each image's crops are one set."""
    if counts is not None:
        return list(torch.arange(len(crops), device=crops.device).split(list(counts)))
    index = crops[:, 0]
    return [(index == image).nonzero().squeeze(1) for image in torch.unique(index)]


#: A set's crops have one aspect ratio when the largest is within this factor of the smallest (candidates of
#: one ratio differ by whole-pixel rounding alone).
ONE_RATIO = 1.01


def one_aspect_ratio(boxes: Tensor) -> Tensor:
    """Whether the boxes ``(..., N, 4)`` share one aspect ratio (:data:`ONE_RATIO`): a bool tensor of the
    leading dimensions (0-dim for one set)."""
    aspect = (boxes[..., 2] - boxes[..., 0]).clamp_min(1e-6) / (boxes[..., 3] - boxes[..., 1]).clamp_min(1e-6)
    return aspect.amax(-1) <= aspect.amin(-1) * ONE_RATIO


def decode(boxes: Tensor, raw: Tensor, temperature) -> Tensor:
    """The expected IoU of each of ``boxes`` (..., N, 4) with the best of them when the best is distributed
    as ``softmax(raw / temperature)`` over the last dimension; ``temperature`` a float or a tensor that
    broadcasts against ``raw`` (..., N)."""
    weights = torch.softmax(raw / temperature, -1)
    iou = box_iou(boxes, boxes)
    return iou @ weights if weights.dim() == 1 else (iou @ weights.unsqueeze(-1)).squeeze(-1)


def expected_iou(crops: Tensor, raw: Tensor, temperature: float, counts: Optional[Sequence[int]] = None,
                 ratio_temperature: Optional[float] = None, face_temperature: Optional[float] = None,
                 with_faces: Optional[Sequence[bool]] = None) -> Tensor:
    """Each crop's expected IoU with the best crop of its set when the best is distributed as
    ``softmax(raw / temperature)`` over the set (:func:`candidate_sets`): ``crops`` rois (K, 5), ``raw`` (K,).
    A set of one aspect ratio (:func:`one_aspect_ratio`) takes ``ratio_temperature`` when it is given
    (chosen on the device: no host read); a set flagged in ``with_faces`` (one flag per set) no more than
    ``face_temperature``."""
    out = torch.empty_like(raw)
    sets = candidate_sets(crops, counts)
    if with_faces is not None and len(with_faces) != len(sets):
        raise ValueError(f"with_faces needs one flag per candidate set ({len(sets)}), got {len(with_faces)}")
    for i, rows in enumerate(sets):
        if not len(rows):
            continue
        boxes = crops[rows, 1:]
        faces = with_faces is not None and with_faces[i]
        t = set_temperature(boxes, raw.dtype, temperature, ratio_temperature, face_temperature, faces)
        out[rows] = decode(boxes, raw[rows], t)
    return out


def set_temperature(boxes: Tensor, dtype: torch.dtype, temperature: float, ratio_temperature: Optional[float],
                    face_temperature: Optional[float], faces: Union[bool, Tensor]):
    """The temperature of candidate sets ``boxes`` (..., N, 4): ``ratio_temperature`` for a set of one aspect
    ratio (chosen on the device: no host read), at most ``face_temperature`` where ``faces`` (a bool, or a
    bool tensor of the leading dimensions); a float where nothing depends on the boxes."""
    t = temperature
    if ratio_temperature is not None and ratio_temperature != temperature:
        t = torch.where(one_aspect_ratio(boxes), ratio_temperature, temperature).to(dtype)
    if face_temperature is None or faces is False:
        return t
    # A float stays a float: a tensor made from it would be a copy the host waits for.
    limited = t.clamp(max=face_temperature) if isinstance(t, Tensor) else min(t, face_temperature)
    return torch.where(faces, limited, t) if isinstance(faces, Tensor) else limited


def shortlist_rows(ranking: Tensor, crops: Tensor, size: int, counts: Optional[Sequence[int]] = None) -> Tensor:
    """The rows of the ``size`` highest ``ranking`` values of each candidate set (:func:`candidate_sets`)."""
    sets = candidate_sets(crops, counts)
    return torch.cat([rows[ranking[rows].topk(min(size, len(rows))).indices] for rows in sets]) if sets else \
        torch.zeros(0, dtype=torch.long, device=crops.device)


def weighted_priors(priors: Sequence[Tuple[float, Optional[Tensor]]], shape: Sequence[int], device: torch.device
                    ) -> Tuple[Tensor, bool]:
    """The sum of the weighted prior scores (zeros of ``shape`` to start with), and whether any weighs."""
    prior = torch.zeros(shape, device=device)
    weighted = False
    for weight, scores in priors:
        if weight:
            prior, weighted = prior + weight * scores, True
    return prior, weighted


def blend_sets(s2cnet_views: Callable[[Tensor], Sequence[Tensor]], priors: Sequence[Tuple[float, Optional[Tensor]]],
               crops: Tensor, config: "BlendConfig", faces: Optional[Tensor] = None,
               judge: Optional[Tensor] = None) -> Tensor:
    """:func:`blend_scores` for one candidate set per image, as (B, N) tensors: ``crops`` (B, N, 4), the
    priors' scores (B, N), ``s2cnet_views(crops)`` S2CNet's (B, M) scores of (B, M, 4) crops on each view,
    ``faces`` (B,) bool, ``judge`` a 0-d bool (:func:`priors_judge_on`; default: true). No loop and no host
    read: what an exported graph computes."""
    c = config
    prior, weighted = weighted_priors(priors, crops.shape[:2], crops.device)
    judge = prior.new_ones((), dtype=torch.bool) if judge is None else judge
    if c.shortlist is not None and weighted:
        # A top-k of min(shortlist, N) would hold a guard on N: the ranking padded with shortlist -inf
        # columns gives exactly shortlist rows, the padding's (index >= N) when N is smaller; those score a
        # real crop in vain and are dropped.
        n, k = crops.shape[1], c.shortlist
        first = -torch.arange(n, dtype=prior.dtype, device=prior.device).expand_as(prior)
        pad = prior.new_full((prior.shape[0], k), -math.inf)
        rows = torch.cat([torch.where(judge, prior, first), pad], 1).topk(n + k, dim=1).indices[:, :k]
        views = s2cnet_views(crops.gather(1, rows.clamp(max=n - 1)[..., None].expand(-1, -1, 4)))
        padded = torch.cat([torch.where(judge, prior, torch.zeros_like(prior)), pad], 1)
        values = padded.gather(1, rows) + sum(views) / len(views)
        raw = torch.full_like(padded, -math.inf).scatter(1, rows, values)[:, :n]
    else:
        views = s2cnet_views(crops)
        raw = torch.where(judge, prior, torch.zeros_like(prior)) + sum(views) / len(views)
    if c.temperature is None:
        return raw
    faces = faces if faces is not None and c.face_temperature is not None else False
    t = set_temperature(crops, raw.dtype, c.temperature, c.ratio_temperature, c.face_temperature, faces)
    with full_precision(crops.device):
        return decode(crops, raw, t[..., None] if isinstance(t, Tensor) else t)


def blend_scores(s2cnet_views: Callable[[Optional[Tensor]], Sequence[Tensor]],
                 priors: Sequence[Tuple[float, Optional[Tensor]]], crops: Tensor, temperature: Optional[float],
                 counts: Optional[Sequence[int]] = None, shortlist: Optional[int] = None,
                 ratio_temperature: Optional[float] = None, face_temperature: Optional[float] = None,
                 with_faces: Optional[Sequence[bool]] = None, judge: bool = True) -> Tensor:
    """The module docstring's formula, the one :class:`S2CNetWithPriors` and the training's blend grid
    use. ``s2cnet_views(rows)`` gives S2CNet's scores of ``crops[rows]`` (all crops for ``None``) on each
    view (the photo, and its mirror image); ``priors`` are ``(weight, scores)`` pairs (scores may be
    ``None`` for a weight of 0). Their mean plus the weighted priors, over the ``shortlist`` (when the
    priors weigh anything; the rest -inf), then with a ``temperature`` the expected IoU of ``crops``
    (:func:`expected_iou`: sets of one aspect ratio at ``ratio_temperature`` when given, those flagged in
    ``with_faces`` at no more than ``face_temperature``). Without ``judge`` (:func:`priors_judge`) the
    priors are out of the scores and the ranking: S2CNet alone scores, its shortlist (where the priors
    weigh) each set's first candidates."""
    prior, weighted = weighted_priors(priors, (len(crops),), crops.device)
    ranking = prior
    if not judge:
        prior, ranking = torch.zeros_like(prior), -torch.arange(len(crops), dtype=prior.dtype, device=prior.device)
    rows = shortlist_rows(ranking, crops, shortlist, counts) if shortlist is not None and weighted else None
    views = s2cnet_views(rows)
    net = sum(views) / len(views)
    if rows is None:
        raw = prior + net
    else:
        values = prior[rows] + net
        raw = values.new_full((len(crops),), -math.inf).index_put_((rows,), values)
    if temperature is None:
        return raw
    with full_precision(crops.device):  # raw is float32 (the priors' are): so is its decoding, under autocast too
        return expected_iou(crops, raw, temperature, counts, ratio_temperature, face_temperature, with_faces)


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
    def of(cls, s2cnet: S2CNet, fcdb_prior: GeometryPrior, gaicd_prior: GeometryPrior,
           setting: BlendSetting) -> "S2CNetWithPriors":
        """The blend of trained models (copied) at ``setting``."""
        config = BlendConfig(asdict(s2cnet.config), asdict(fcdb_prior.config), asdict(gaicd_prior.config))
        blend = cls(config.with_setting(setting))
        for mine, theirs in ((blend.s2cnet, s2cnet), (blend.fcdb_prior, fcdb_prior), (blend.gaicd_prior, gaicd_prior)):
            mine.load_state_dict(theirs.state_dict())
        return blend.eval()

    @property
    def setting(self) -> BlendSetting:
        """The blend's weights, temperatures and mirror image (``str`` writes it, e.g. ``1:0.25:0.7:2:1``)."""
        return self.config.setting

    def with_setting(self, setting: Union[BlendSetting, str]) -> "S2CNetWithPriors":
        """A copy of this model (the same weights) that blends at ``setting``, a :class:`BlendSetting` or
        its text (:meth:`BlendSetting.parse`), e.g. ``model.with_setting("1:0.25:1:2:1:mirror")``."""
        config = self.config.with_setting(BlendSetting.parse(setting) if isinstance(setting, str) else setting)
        blend = copy.deepcopy(self)
        blend.config = config
        return blend

    decodes_candidates = True
    uses_faces = True

    def forward(self, images: Tensor, crop_boxes: BoxesLike, object_boxes: BoxesLike, *,
                groups: Optional[Sequence[Sequence[int]]] = None, faces: Optional[Sequence[bool]] = None) -> Tensor:
        """Scores of ``crop_boxes``; ``groups`` (with a list of per-image boxes): for each image, the sizes
        of the consecutive groups its candidates are decoded in (default: one group per image); ``faces``
        (with a list of per-image boxes): for each image, whether faces were found in it (module
        docstring, ``face_temperature``)."""
        crops, objects = check_scorer_inputs(images, crop_boxes, object_boxes, self.bbox_num, min_side=32)
        counts = [len(b) for b in crop_boxes] if isinstance(crop_boxes, (list, tuple)) else None
        for name, value in (("groups", groups), ("faces", faces)):
            if value is not None and (counts is None or len(value) != len(counts)):
                raise ValueError(f"{name} needs crop_boxes as a list and one entry per image")
        with_faces = None if faces is None else [bool(f) for f in faces]
        if groups is not None:
            if any(sum(g) != n for g, n in zip(groups, counts)):
                raise ValueError("groups needs one list of group sizes per image, each summing to that image's "
                                 "number of crops")
            if with_faces is not None:
                with_faces = [f for f, g in zip(with_faces, groups) for _ in g]
            counts = [int(n) for g in groups for n in g]
        net, c = self.s2cnet, self.config
        size = images.shape[-2:]
        inputs = [(net.features(images), crops, objects)]
        if c.mirror:
            width = images.shape[-1]
            mirrored = [torch.cat([r[:, :1], flip_boxes(r[:, 1:], width)], 1) for r in (crops, objects)]
            inputs.append((net.features(images.flip(-1)), *mirrored))

        def views(rows: Optional[Tensor]) -> List[Tensor]:
            return [net.score(f, b if rows is None else b[rows], o, size) for f, b, o in inputs]

        priors = [(weight, prior(images, crops, objects) if weight else None)
                  for weight, prior in ((c.geometry_weight, self.fcdb_prior), (c.gaicd_weight, self.gaicd_prior))]
        return blend_scores(views, priors, crops, c.temperature, counts, c.shortlist, c.ratio_temperature,
                            c.face_temperature, with_faces, judge=priors_judge(size))

    def score_sets(self, images: Tensor, crops: Tensor, objects: Tensor, faces: Optional[Tensor] = None) -> Tensor:
        """The scores (B, N) of one candidate set per image, ``crops`` (B, N, 4), with ``objects`` (B,
        bbox_num, 4), boxes in pixels of ``images``; ``faces`` (B,) bool: whether faces were found in each
        image. The traceable form of the call (:func:`blend_sets`): no input checks, no loop, no host read."""
        net, c = self.s2cnet, self.config
        size = images.shape[-2:]
        crops = crops.to(images.dtype)
        objects = clamp_to_image(objects.to(images.dtype), size)
        inputs = [(images, objects)]
        if c.mirror:
            inputs.append((images.flip(-1), flip_boxes(objects, size[1])))
        features = [(net.features_in_one_pass(view), batched_rois(o)) for view, o in inputs]

        def views(chosen: Tensor) -> List[Tensor]:
            boxes = [chosen, flip_boxes(chosen, size[1])][:len(features)]
            return [net.score_graphs(f, batched_rois(b), o, size).reshape(chosen.shape[:2])
                    for (f, o), b in zip(features, boxes)]

        priors = [(weight, prior.score_sets(images, crops, objects) if weight else None)
                  for weight, prior in ((c.geometry_weight, self.fcdb_prior), (c.gaicd_weight, self.gaicd_prior))]
        return blend_sets(views, priors, crops, c, faces, judge=priors_judge_on(crops, size))

    def fused(self) -> "S2CNetWithPriors":
        """An inference copy with S2CNet's :meth:`~s2c_ops.S2CNet.fused` layers."""
        blend = copy.deepcopy(self).eval()
        blend.s2cnet = self.s2cnet.fused()
        blend.inference_only = True
        return blend
