"""The blend setting chosen on several training runs at once: their ``blend.json`` grids (``s2c train`` on FCDB,
validation held out) averaged setting by setting, then the best taken as one run's grid is
(:func:`s2c_ops.training.blend_search.choose_blend`). Less noisy than one run's choice on 200 photos.

    python tools/mean_blend.py runs/seed0/blend.json runs/seed1/blend.json runs/seed2/blend.json [--mirror off]

Prints the chosen setting with its mean figures, a few reference rows, and the ``--blend-setting`` value
(its text, :class:`s2c_ops.models.blend.BlendSetting`) that trains the shipped weights with it.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops.models.blend import SETTING_FIELDS, BlendSetting  # noqa: E402
from s2c_ops.training.blend_search import blend_figures, choose_blend  # noqa: E402

FIGURES = ("ratio_iou", "ratio_bde", "free_iou", "free_bde")


def mean_grid(files) -> dict:
    grids = []
    for file in files:
        rows = json.loads(Path(file).read_text())["measured"]
        # the setting's fields (rows of earlier releases lack the ratio and face temperatures: None)
        grids.append({BlendSetting(**{k: r[k] for k in SETTING_FIELDS if k in r}): r for r in rows})
    common = set(grids[0]).intersection(*grids[1:])
    if not common:
        raise SystemExit("the runs' grids share no setting")
    return {c: {f: sum(g[c][f] for g in grids) / len(grids) for f in FIGURES} for c in common}


def row(label: str, r: dict) -> str:
    return (f"| {label} | {r['ratio_iou']:.3f} / {r['ratio_bde']:.4f} | {r['free_iou']:.3f} / "
            f"{r['free_bde']:.4f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="blend.json files of runs that held the validation photos out")
    p.add_argument("--mirror", choices=("auto", "on", "off"), default="auto")
    args = p.parse_args()
    grid = mean_grid(args.files)
    mirror = {"auto": None, "on": True, "off": False}[args.mirror]
    best = choose_blend(grid, mirror)
    print(f"mean of {len(args.files)} runs; {len(grid)} settings\n")
    print("| setting | ratio given: IoU / BDE | free form: IoU / BDE |\n| --- | ---: | ---: |")
    m = best.mirror
    for label, setting in (("S2CNet alone", BlendSetting(0, 0, None, mirror=m)),
                           ("+ FCDB prior (weight 1)", BlendSetting(1, 0, None, mirror=m)),
                           ("+ expected IoU, temperature 1", BlendSetting(1, 0, 1, mirror=m))):
        if setting in grid:
            print(row(label, grid[setting]))
    print(row(f"chosen: FCDB prior {best.geometry_weight:g}, GAICD prior {best.gaicd_weight:g}, temperature "
              f"{best.temperature}, ratio temperature {best.ratio_temperature}, mirror {m}",
              blend_figures(grid, best)))
    print(f"\n--blend-setting {best}")


if __name__ == "__main__":
    main()
