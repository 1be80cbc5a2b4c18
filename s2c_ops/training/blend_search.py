"""The blend of S2CNet with the geometry priors (:class:`~s2c_ops.models.blend.S2CNetWithPriors`) chosen at
the end of FCDB training: the FCDB prior trained (:mod:`.fcdb_prior`), every setting of :data:`BLEND_GRID`
(or one given setting) measured on the evaluated photos, the best written to ``blend.safetensors`` and all
of them to ``blend.json``. A setting is a :class:`~s2c_ops.models.blend.BlendSetting` throughout: the grid's
keys, the chosen one, the rows of ``blend.json``."""
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from ..cropping.transforms import OfficialPreprocess
from ..evaluation import BestCropMetrics
from ..files import write_json_atomic
from ..models.blend import BlendSetting
from ..models.s2cnet import S2CNet
from .features import CachedPhoto
from .fcdb_prior import prior_scores, train_fcdb_prior
from .scoring import candidates, protocol_figures, score_view

#: The blends measured at the end of training, one temperature each: every FCDB-prior weight, GAICD-prior
#: weight, temperature, with and without the mirror image (twice the backbone's time).
BLEND_GRID = tuple(BlendSetting(g, p, t, mirror=m) for g in (0.0, 0.5, 1.0) for p in (0.0, 0.25, 0.5, 1.0)
                   for t in (None, 0.5, 0.7, 1.0, 1.4, 2.0) for m in (True, False))

#: :func:`measure_blends`' figures of each setting measured: ``ratio_iou``, ``ratio_bde``, ``free_iou``,
#: ``free_bde``.
Results = Dict[BlendSetting, Dict[str, float]]


def at_temperature(setting: BlendSetting, temperature: Optional[float]) -> BlendSetting:
    """``setting`` decoded at the one ``temperature`` (no ratio or face temperature): what
    :func:`measure_blends` measures."""
    return replace(setting, temperature=temperature, ratio_temperature=None, face_temperature=None)


def choose_blend(results: Results, mirror: Optional[bool] = None) -> BlendSetting:
    """The best blend of :func:`measure_blends`' ``results`` (mean of the two protocols' IoU,
    :func:`blend_figures`; of ratio given alone where no photo has free-form candidates), ``mirror`` ``None`` or that side alone. For each weighting, each protocol takes
    its own best temperature: the ratio-given candidates are sets of one aspect ratio, decoded at
    ``ratio_temperature``; free-form sets at ``temperature`` (no decoding is one option for both). Returns
    the setting (its figures: :func:`blend_figures`)."""
    options = []
    for g, p, m in sorted({(s.geometry_weight, s.gaicd_weight, s.mirror) for s in results
                           if mirror is None or s.mirror == mirror}):
        settings = [s for s in results if (s.geometry_weight, s.gaicd_weight, s.mirror) == (g, p, m)]
        options += [s for s in settings if s.temperature is None]
        decoded = [s for s in settings if s.temperature is not None]
        if decoded:
            free = max(decoded, key=lambda s: results[s]["free_iou"]).temperature
            ratio = max(decoded, key=lambda s: results[s]["ratio_iou"]).temperature
            options.append(replace(decoded[0], temperature=free, ratio_temperature=None if ratio == free else ratio))

    def mean_iou(setting: BlendSetting) -> float:  # a protocol no photo has (NaN: panoramas only) counts 0
        figures = blend_figures(results, setting)
        return sum(v for v in (figures["ratio_iou"], figures["free_iou"]) if not math.isnan(v))

    return max(options, key=mean_iou)


def blend_figures(results: Results, setting: BlendSetting) -> Dict[str, float]:
    """The figures of ``setting`` from :func:`measure_blends`' ``results``: ratio given as measured at its
    ratio temperature (or temperature), free form at its temperature; the face temperature is not measured
    (the results know no faces)."""
    ratio_t = setting.temperature if setting.ratio_temperature is None else setting.ratio_temperature
    figures = {k: v for k, v in results[at_temperature(setting, ratio_t)].items() if k.startswith("ratio_")}
    figures.update({k: v for k, v in results[at_temperature(setting, setting.temperature)].items()
                    if k.startswith("free_")})
    return figures


@torch.no_grad()
def measure_blends(model: S2CNet, fcdb_prior, gaicd_prior, photos: List[CachedPhoto], device: torch.device,
                   preprocess: OfficialPreprocess, grid: Sequence[BlendSetting] = BLEND_GRID) -> Results:
    """IoU and BDE on ``photos`` of :class:`~s2c_ops.models.blend.S2CNetWithPriors` at each setting of
    ``grid`` (one temperature each, :func:`at_temperature`): S2CNet on the photo (and its mirror image; its
    own features: right after fine-tuning too), the weighted priors (where they judge:
    :func:`~s2c_ops.models.blend.priors_judge`), the expected-IoU decoding."""
    from ..models.blend import SHORTLIST, blend_scores, priors_judge

    model.eval()
    per_setting = {}
    for setting in grid:
        if setting != at_temperature(setting, setting.temperature):
            raise ValueError(f"measure_blends measures one temperature a setting, got {setting}")
        per_setting[setting] = BestCropMetrics()
    for photo in photos:
        views = [model.features(photo.view(v, preprocess).to(device)) for v in (0, 1)]
        for protocol, boxes in candidates(photo).items():
            own = score_view(model, photo, 0, boxes, device, views[0]).cpu()
            mirrored = score_view(model, photo, 1, boxes, device, views[1]).cpu()
            fcdb, gaicd = (prior_scores(p, photo, 0, boxes) for p in (fcdb_prior, gaicd_prior))
            rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
            for s, metrics in per_setting.items():
                scored = [own, mirrored] if s.mirror else [own]
                scores = blend_scores(lambda rows, v=scored: v if rows is None else [x[rows] for x in v],
                                      [(s.geometry_weight, fcdb), (s.gaicd_weight, gaicd)], rois, s.temperature,
                                      shortlist=SHORTLIST, judge=priors_judge(photo.geometry.resized))
                metrics.update(photo.file, "blend", protocol, boxes[int(scores.argmax())], photo.crop,
                               photo.geometry.original)
    return {s: protocol_figures(metrics, "blend") for s, metrics in per_setting.items()}


def write_blend(model: S2CNet, train: List[CachedPhoto], evaluated: List[CachedPhoto], device: torch.device,
                preprocess: OfficialPreprocess, folder: Path, *, seed: int, temperature: float,
                mirror: Optional[bool], setting: Optional[BlendSetting], log: Callable[[str], None]) -> Dict[str, Any]:
    """The FCDB geometry prior trained on ``train``, every blend of :data:`BLEND_GRID` (``mirror``: only
    those with, or without, the mirror image; ``None``: both) or the one ``setting`` measured on
    ``evaluated``, the best (:func:`choose_blend`; mean of the two protocols' IoU) or the given one written
    to ``folder/blend.safetensors``, every setting measured to ``blend.json`` (:func:`figures_row`). Returns
    the summary's ``{"blend": chosen}``, the chosen setting's row."""
    from ..models.blend import S2CNetWithPriors
    from ..models.registry import create_model

    fcdb_prior = train_fcdb_prior(train, epochs=20, lr=2e-3, temperature=temperature, seed=seed, log=log)
    gaicd_prior = create_model("prior")
    if setting is None:
        results = measure_blends(model, fcdb_prior, gaicd_prior, evaluated, device, preprocess)
        setting = choose_blend(results, mirror)
    else:
        temperatures = (setting.temperature, setting.ratio_temperature or setting.temperature)
        results = measure_blends(model, fcdb_prior, gaicd_prior, evaluated, device, preprocess,
                                 list(dict.fromkeys(at_temperature(setting, t) for t in temperatures)))
    for m in (True, False):
        alone = BlendSetting(0.0, 0.0, None, mirror=m)
        if alone in results:
            r = results[alone]
            log(f"S2CNet alone (mirror {m}): ratio given IoU {r['ratio_iou']:.3f} BDE {r['ratio_bde']:.4f}  "
                f"free form IoU {r['free_iou']:.3f} BDE {r['free_bde']:.4f}")
    chosen = figures_row(setting, blend_figures(results, setting))
    c = chosen
    log(f"blend {setting} (FCDB prior {c['geometry_weight']:g}, GAICD prior {c['gaicd_weight']:g}, temperature "
        f"{c['temperature']}, ratio temperature {c['ratio_temperature']}, face temperature "
        f"{c['face_temperature']} (not measured here), mirror {c['mirror']}): ratio given IoU "
        f"{c['ratio_iou']:.3f} BDE {c['ratio_bde']:.4f}  free form IoU {c['free_iou']:.3f} BDE {c['free_bde']:.4f}")
    S2CNetWithPriors.of(model.cpu(), fcdb_prior, gaicd_prior, setting).save(folder / "blend.safetensors",
                                                                           dtype=torch.float16)
    model.to(device)
    write_json_atomic(folder / "blend.json", {"chosen": chosen,
                                              "measured": [figures_row(s, r) for s, r in results.items()]})
    log(f"wrote {folder / 'blend.safetensors'}")
    return {"blend": chosen}


def figures_row(setting: BlendSetting, figures: Dict[str, float]) -> Dict[str, Any]:
    """One row of ``blend.json``: the setting as text (``setting``, what ``--blend-setting`` reads), its
    fields, and its figures."""
    return {"setting": str(setting), **asdict(setting), **figures}
