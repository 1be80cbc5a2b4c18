"""How often crops keep the faces: labelled faces of people photos, three ratios (16:9, 1:1, 4:5).

    python benchmarks/faces_kept.py [--data ../shared/data/FCDB] [--labels benchmarks/face_labels_fcdb_val.json]
                                    [--weights blend.safetensors] [--long-side 4000 [--decoded-first]]

A case is one photo and one ratio. Three measures:

- **kept** (issue 34's measure): the crop cuts no labelled face (each face box wholly inside or wholly
  outside it, 1 px tolerance) and holds every *main* face (height at least half the largest face's) wholly
  inside; only the cases where a crop of the ratio can hold the union of the main faces count, and the
  **no face cut** column is on those cases too;
- every face whole (all cases): no labelled face cut, more than 5% and less than 95% of it kept being a cut
  (``s2c_ops.cropping.face_rule.faces_cut``);
- the largest face inside (all cases): 95% of its box or more kept (a crop that leaves every face out cuts
  none).

The labels are face boxes in the photos' pixels: the 47 people photos of the FCDB validation split (the
faces OpenCV's Haar cascades found plus two they missed, the faces MTCNN found at the Cropper's 256 px
and at 512 px on the short side, down to 20 px there, and those RetinaFace found at 512 px, each checked
by eye; detections that were no faces are left out; docs/models.md) and the demo photo astronaut.png.
Croppers compared: the centred largest crop, the geometry prior without the face rule (saliency boxes),
the prior and the default model as shipped (faces first, face rule), or with ``--weights`` a weights file
in its place (e.g. a run's ``blend.safetensors`` that held the validation photos out, when the shipped
model trained on them). With ``--long-side N``, the photos enlarged to N pixels on the
long side and saved as JPEGs first, their labels scaled with them (phone-size photos, which the Cropper
decodes reduced: a JPEG draft), and with ``--decoded-first`` too, given to the Croppers decoded (which
they reduce with ``Image.reduce`` before the conversion).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.candidates import largest_crop, parse_ratio, ratio_anchors  # noqa: E402
from s2c_ops.cropping.face_rule import FACE_CUT_MARGIN, faces_cut  # noqa: E402
from s2c_ops.ops.boxes import kept_share, sides  # noqa: E402
from s2c_ops.cropping.proposals import create_proposer  # noqa: E402
from phone_size import decoded, enlarged  # noqa: E402
from s2c_ops.models import create_model, load  # noqa: E402
from s2c_ops.models.registry import model_description  # noqa: E402

RATIOS = ("16:9", "1:1", "4:5")
ASTRONAUT = {"astronaut.png": [[172.0, 66.0, 278.0, 161.0]]}  # y from the issue, x by eye
TOLERANCE = 1.0  # pixels


def inside(crop: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F,) bool: each face box wholly inside ``crop`` (4,), within :data:`TOLERANCE`."""
    return ((faces[:, :2] >= crop[:2] - TOLERANCE) & (faces[:, 2:] <= crop[2:] + TOLERANCE)).all(1)


def outside(crop: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F,) bool: each face box wholly outside ``crop``, within :data:`TOLERANCE`."""
    return ((faces[:, 2:] <= crop[:2] + TOLERANCE) | (faces[:, :2] >= crop[2:] - TOLERANCE)).any(1)


def main_faces(faces: torch.Tensor) -> torch.Tensor:
    """(F,) bool: the faces at least half as tall as the tallest."""
    height = sides(faces)[1]
    return height >= 0.5 * height.max()


def main_faces_fit(faces: torch.Tensor, height: int, width: int, ratio: float) -> bool:
    """Whether the largest crop of ``ratio`` can hold the union of the main faces."""
    union = faces[main_faces(faces)]
    w = float(union[:, 2].max() - union[:, 0].min())
    h = float(union[:, 3].max() - union[:, 1].min())
    big_h, big_w = largest_crop(height, width, ratio)
    return w <= big_w + TOLERANCE and h <= big_h + TOLERANCE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "FCDB"))
    p.add_argument("--labels", default=str(ROOT / "benchmarks" / "face_labels_fcdb_val.json"))
    p.add_argument("--weights", help="a weights file in place of the default model")
    p.add_argument("--long-side", type=int, default=None, help="enlarge the photos to this long side first")
    p.add_argument("--decoded-first", action="store_true", help="give the Croppers the photos decoded")
    args = p.parse_args()
    labels = {str(Path(args.data) / "images" / f): v for f, v in json.loads(Path(args.labels).read_text()).items()}
    labels.update({str(ROOT / "s2c_ops" / "demo_photos" / f): v for f, v in ASTRONAUT.items()})
    if args.long_side:
        folder = tempfile.TemporaryDirectory()  # removed when the run ends
        scaled = {}
        for path, faces in labels.items():
            big, (sx, sy) = enlarged(Path(path), args.long_side, Path(folder.name))
            scaled[str(big)] = [[x1 * sx, y1 * sy, x2 * sx, y2 * sy] for x1, y1, x2, y2 in faces]
        labels = scaled
    prior = create_model("prior")
    default = load(args.weights) if args.weights else create_model("default")
    description = args.weights or model_description("default")
    croppers = {
        "prior, saliency boxes, no face rule": Cropper(prior, create_proposer("saliency"), face_rule=None),
        "prior (faces, face rule)": Cropper(prior),
        f"{description} (faces, face rule)": Cropper(default),
    }
    names = ["centred", *croppers]
    whole = {name: [] for name in names}  # no face cut (5% margin), every case
    main_kept = {name: [] for name in names}  # the largest labelled face inside, every case
    kept = {name: [] for name in names}  # issue 34's measure, cases whose main faces fit the ratio
    uncut = {name: [] for name in names}  # no face cut (1 px), the same cases
    misses = {name: [] for name in names}
    for path, faces in labels.items():
        photo = decoded(path) if args.decoded_first else Image.open(path)
        faces = torch.tensor(faces)
        width, height = sides(faces)
        largest = faces[(width * height).argmax()]
        main = main_faces(faces)
        w, h = photo.size
        for ratio in RATIOS:
            value = parse_ratio(ratio)
            boxes = {"centred": ratio_anchors(h, w, value)[:1]}
            boxes.update({name: cropper.crop(photo, ratio)[0].boxes[:1] for name, cropper in croppers.items()})
            fits = main_faces_fit(faces, h, w, value)
            for name, box in boxes.items():
                whole[name].append(int(faces_cut(box, faces)[0]) == 0)
                main_kept[name].append(float(kept_share(box, largest[None])[0]) >= 1 - FACE_CUT_MARGIN)
                if fits:
                    no_cut = bool((inside(box[0], faces) | outside(box[0], faces)).all())
                    uncut[name].append(no_cut)
                    kept[name].append(no_cut and bool(inside(box[0], faces[main]).all()))
                    if not kept[name][-1]:
                        misses[name].append(f"{Path(path).name} {ratio}{'' if no_cut else ' (a face cut)'}")
        if Path(path).stem == "astronaut":
            for name in names:
                kept_all = all(whole[name][-3:]) and all(main_kept[name][-3:])
                print(f"astronaut.png, {name}: {'kept' if kept_all else 'cut or left out'} in {', '.join(RATIOS)}")
    cases, counted = len(whole["centred"]), len(kept["centred"])

    def share(values) -> str:
        return f"{100 * sum(values) / len(values):.1f}% ({sum(values)}/{len(values)})"

    print(f"\n{len(labels)} photos, {sum(len(v) for v in labels.values())} faces, {cases} cases (photo x ratio), "
          f"{counted} of them with the main faces in reach of the ratio\n")
    print("| cropper | kept (no face cut, main faces inside) | no face cut | every face whole (all cases) | "
          "the largest face inside (all cases) |\n| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        cells = (share(kept[name]), share(uncut[name]), share(whole[name]), share(main_kept[name]))
        print(f"| {name} | {' | '.join(cells)} |")
    for name in names[1:]:
        print(f"\nnot kept, {name}: {', '.join(misses[name]) or 'none'}")


if __name__ == "__main__":
    main()
