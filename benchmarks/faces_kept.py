"""How often crops keep every face whole: labelled faces of people photos, three ratios (16:9, 1:1, 4:5).

    python benchmarks/faces_kept.py [--data ../shared/data/FCDB] [--labels benchmarks/face_labels_fcdb_val.json]
                                    [--weights blend.safetensors]

A case is one photo and one ratio; it counts as kept when no labelled face is cut, i.e. the crop keeps
none or all of each face's box (more than 5% and less than 95% of it is a cut, the rule of
``s2c_ops.cropping.cropper.faces_cut``). A second column counts the cases whose crop keeps the largest
labelled face (95% of its box or more): a crop that leaves every face out cuts none. The labels are face boxes in the photos' pixels: the 36 people
photos of the FCDB validation split (89 faces: the faces OpenCV's Haar cascades found plus two they missed,
and the faces MTCNN found, each checked by eye, one of them at a photo's top edge found once MTCNN's crops
repeated the edge's pixels; three MTCNN detections and one Haar detection that were no faces are left
out, the last, a person's back, only when a later look at every label caught it) and the demo photo
astronaut.png. Croppers compared: the centred largest crop, the geometry prior without the
face rule (saliency boxes), the prior and the default model as shipped (faces first, face rule), or with
``--weights`` a weights file in its place (e.g. a run's ``blend.safetensors`` that held the validation photos
out, when the shipped model trained on them).
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.candidates import parse_ratio, ratio_anchors  # noqa: E402
from s2c_ops.cropping.cropper import FACE_CUT_MARGIN, faces_cut  # noqa: E402
from s2c_ops.ops.boxes import kept_share, sides  # noqa: E402
from s2c_ops.cropping.proposals import get_proposer  # noqa: E402
from s2c_ops.models.default import named_model  # noqa: E402
from s2c_ops.models.weights import load_weights  # noqa: E402

RATIOS = ("16:9", "1:1", "4:5")
ASTRONAUT = {"astronaut.png": [[172.0, 66.0, 278.0, 161.0]]}  # y from the issue, x by eye


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "FCDB"))
    p.add_argument("--labels", default=str(ROOT / "benchmarks" / "face_labels_fcdb_val.json"))
    p.add_argument("--weights", help="a weights file in place of the default model")
    args = p.parse_args()
    labels = {str(Path(args.data) / "images" / f): v for f, v in json.loads(Path(args.labels).read_text()).items()}
    labels.update({str(ROOT / "s2c_ops" / "demo_photos" / f): v for f, v in ASTRONAUT.items()})
    prior, _ = named_model("prior")
    default, description = load_weights(args.weights) if args.weights else named_model("default")
    croppers = {
        "prior, saliency boxes, no face rule": Cropper(prior, get_proposer("saliency"), keep_faces=False),
        "prior (faces, face rule)": Cropper(prior),
        f"{description} (faces, face rule)": Cropper(default),
    }
    kept = {"centred": []}
    kept.update({name: [] for name in croppers})
    main_kept = {name: [] for name in kept}  # the largest labelled face wholly inside
    for path, faces in labels.items():
        photo = Image.open(path)
        faces = torch.tensor(faces)
        width, height = sides(faces)
        largest = faces[(width * height).argmax()]
        w, h = photo.size
        for ratio in RATIOS:
            boxes = {"centred": ratio_anchors(h, w, parse_ratio(ratio))[:1]}
            boxes.update({name: cropper.crop(photo, ratio)[0].boxes[:1] for name, cropper in croppers.items()})
            for name, box in boxes.items():
                kept[name].append(int(faces_cut(box, faces)[0]) == 0)
                main_kept[name].append(float(kept_share(box, largest[None])[0]) >= 1 - FACE_CUT_MARGIN)
        astronaut = Path(path).name == "astronaut.png"
        if astronaut:
            for name in kept:
                print(f"astronaut.png, {name}: {'all kept' if all(kept[name][-3:]) else 'cut'} in {', '.join(RATIOS)}")
    cases = len(kept["centred"])
    print(f"\n{len(labels)} photos, {sum(len(v) for v in labels.values())} faces, {cases} cases (photo x ratio)\n")
    print("| cropper | cases with every face whole | cases with the largest face inside |\n| --- | ---: | ---: |")
    for name, values in kept.items():
        inside = main_kept[name]
        print(f"| {name} | {100 * sum(values) / cases:.0f}% ({sum(values)}/{cases}) | "
              f"{100 * sum(inside) / cases:.0f}% ({sum(inside)}/{cases}) |")


if __name__ == "__main__":
    main()
