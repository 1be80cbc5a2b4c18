"""The blend of S2CNet with the geometry priors (:class:`~s2c_ops.models.blend.S2CNetWithPriors`) chosen at
the end of FCDB training: the FCDB prior trained (:mod:`.fcdb_prior`), every setting of :data:`BLEND_GRID`
(or one given setting) measured on the evaluated photos, the best written to ``blend.safetensors`` and all
of them to ``blend.json``."""
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..cropping.transforms import OfficialPreprocess
from ..evaluation import BestCropMetrics
from ..files import write_json_atomic
from ..models.s2cnet import S2CNet
from .features import CachedPhoto
from .fcdb_prior import prior_scores, train_fcdb_prior
from .options import BlendSetting
from .scoring import candidates, protocol_figures, score_view

#: The blends measured at the end of training: FCDB-prior weights, GAICD-prior weights, temperatures, and
#: whether S2CNet also scores the mirror image (twice the backbone's time).
BLEND_GRID = ((0.0, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0), (None, 0.5, 0.7, 1.0, 1.4, 2.0), (True, False))

#: ``(geometry_weight, gaicd_weight, temperature, mirror)``: one measured blend.
Combo = Tuple[float, float, Optional[float], bool]


def choose_blend(results: Dict[Combo, Dict[str, float]], mirror: Optional[bool] = None) -> Dict[str, Any]:
    """The best blend of :func:`measure_blends`' ``results`` (mean of the two protocols' IoU), ``mirror``
    ``None`` or that side alone. For each weighting, each protocol takes its own best temperature: the
    ratio-given candidates are sets of one aspect ratio, decoded at ``ratio_temperature``; free-form sets at
    ``temperature`` (no decoding is one option for both). Returns the setting with its figures."""
    options = []
    for g, p, m in sorted({(c[0], c[1], c[3]) for c in results if mirror is None or c[3] == mirror}):
        temps = [c[2] for c in results if (c[0], c[1], c[3]) == (g, p, m)]
        pairs = [(None, None)] if None in temps else []
        decoded = [t for t in temps if t is not None]
        if decoded:
            pairs.append((max(decoded, key=lambda t: results[(g, p, t, m)]["free_iou"]),
                          max(decoded, key=lambda t: results[(g, p, t, m)]["ratio_iou"])))
        options += [blend_figures(results, g, p, free_t, ratio_t, m) for free_t, ratio_t in pairs]
    return max(options, key=lambda o: o["ratio_iou"] + o["free_iou"])


def blend_figures(results: Dict[Combo, Dict[str, float]], g: float, p: float, free_t: Optional[float],
                  ratio_t: Optional[float], m: bool, face_t: Optional[float] = None) -> Dict[str, Any]:
    """A blend setting with its figures from :func:`measure_blends`' ``results``: ratio given as measured at
    ``ratio_t`` (``None``: ``free_t``), free form at ``free_t``; ``face_t``, the face temperature, is recorded
    but not measured (the results know no faces)."""
    ratio_t = None if ratio_t == free_t else ratio_t
    figures = {k: v for k, v in results[(g, p, free_t if ratio_t is None else ratio_t, m)].items()
               if k.startswith("ratio_")}
    figures.update({k: v for k, v in results[(g, p, free_t, m)].items() if k.startswith("free_")})
    return {"geometry_weight": g, "gaicd_weight": p, "temperature": free_t, "ratio_temperature": ratio_t,
            "face_temperature": face_t, "mirror": m, **figures}


@torch.no_grad()
def measure_blends(model: S2CNet, fcdb_prior, gaicd_prior, photos: List[CachedPhoto], device: torch.device,
                   preprocess: OfficialPreprocess, grid=BLEND_GRID) -> Dict[Combo, Dict[str, float]]:
    """IoU and BDE on ``photos`` of :class:`~s2c_ops.models.blend.S2CNetWithPriors` for each
    ``(geometry_weight, gaicd_weight, temperature, mirror)`` of ``grid``: S2CNet on the photo (and its mirror
    image; its own features: right after fine-tuning too), the weighted priors, the expected-IoU decoding."""
    from ..models.blend import SHORTLIST, blend_scores

    model.eval()
    combos = [(g, p, t, m) for g in grid[0] for p in grid[1] for t in grid[2] for m in grid[3]]
    per_combo = {c: BestCropMetrics() for c in combos}
    for photo in photos:
        views = [model.features(photo.view(v, preprocess).to(device)) for v in (0, 1)]
        for protocol, boxes in candidates(photo).items():
            own = score_view(model, photo, 0, boxes, device, views[0]).cpu()
            mirrored = score_view(model, photo, 1, boxes, device, views[1]).cpu()
            fcdb, gaicd = (prior_scores(p, photo, 0, boxes) for p in (fcdb_prior, gaicd_prior))
            rois = torch.cat([torch.zeros(len(boxes), 1), boxes], 1)
            for (g, p, t, m), metrics in per_combo.items():
                scored = [own, mirrored] if m else [own]
                scores = blend_scores(lambda rows, v=scored: v if rows is None else [s[rows] for s in v],
                                      [(g, fcdb), (p, gaicd)], rois, t, shortlist=SHORTLIST)
                metrics.update(photo.file, "blend", protocol, boxes[int(scores.argmax())], photo.crop,
                               photo.geometry.original)
    return {combo: protocol_figures(metrics, "blend") for combo, metrics in per_combo.items()}


def write_blend(model: S2CNet, train: List[CachedPhoto], evaluated: List[CachedPhoto], device: torch.device,
                preprocess: OfficialPreprocess, folder: Path, *, seed: int, temperature: float,
                mirror: Optional[bool], setting: Optional[BlendSetting], log: Callable[[str], None]) -> Dict[str, Any]:
    """The FCDB geometry prior trained on ``train``, every blend of :data:`BLEND_GRID` (``mirror``: only
    those with, or without, the mirror image; ``None``: both) or the one ``setting`` measured on
    ``evaluated``, the best (:func:`choose_blend`; mean of the two protocols' IoU) or the given one written
    to ``folder/blend.safetensors``, all of them to ``blend.json``. Returns the summary's ``{"blend": chosen}``."""
    from ..models.blend import S2CNetWithPriors
    from ..models.default import prior

    fcdb_prior = train_fcdb_prior(train, epochs=20, lr=2e-3, temperature=temperature, seed=seed, log=log)
    gaicd_prior = prior()
    if setting is None:
        results = measure_blends(model, fcdb_prior, gaicd_prior, evaluated, device, preprocess)
        chosen = choose_blend(results, mirror)
    else:
        g, p, free_t, ratio_t, face_t, m = setting
        temps = tuple(dict.fromkeys(t for t in (free_t, ratio_t) if t is not None)) or (None,)
        results = measure_blends(model, fcdb_prior, gaicd_prior, evaluated, device, preprocess,
                                 ((g,), (p,), temps, (m,)))
        chosen = blend_figures(results, g, p, free_t, ratio_t, m, face_t)
    for combo in ((0.0, 0.0, None, True), (0.0, 0.0, None, False)):
        if combo in results:
            r = results[combo]
            log(f"S2CNet alone (mirror {combo[3]}): ratio given IoU {r['ratio_iou']:.3f} BDE {r['ratio_bde']:.4f}  "
                f"free form IoU {r['free_iou']:.3f} BDE {r['free_bde']:.4f}")
    c = chosen
    log(f"blend (FCDB prior {c['geometry_weight']:g}, GAICD prior {c['gaicd_weight']:g}, temperature "
        f"{c['temperature']}, ratio temperature {c['ratio_temperature']}, face temperature "
        f"{c['face_temperature']} (not measured here), mirror {c['mirror']}): ratio given IoU "
        f"{c['ratio_iou']:.3f} BDE {c['ratio_bde']:.4f}  free form IoU {c['free_iou']:.3f} BDE {c['free_bde']:.4f}")
    S2CNetWithPriors.of(model.cpu(), fcdb_prior, gaicd_prior, geometry_weight=c["geometry_weight"],
                        gaicd_weight=c["gaicd_weight"], temperature=c["temperature"], mirror=c["mirror"],
                        ratio_temperature=c["ratio_temperature"], face_temperature=c["face_temperature"]
                        ).save(folder / "blend.safetensors", dtype=torch.float16)
    model.to(device)
    write_json_atomic(folder / "blend.json", {"chosen": chosen, "measured": [
        {"geometry_weight": c[0], "gaicd_weight": c[1], "temperature": c[2], "mirror": c[3], **r}
        for c, r in results.items()]})
    log(f"wrote {folder / 'blend.safetensors'}")
    return {"blend": chosen}
