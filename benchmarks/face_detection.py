"""Face detection on the FCDB validation photos: labelled faces found, and faces found where none is labelled.

    python benchmarks/face_detection.py [--data ../shared/data/FCDB] [--min-face F] [--factor F] [--candidates N N N]
                                       [--short-side 256]

The detector sees what the default proposer sees: each photo resized (antialiased) to ``--short-side``
pixels on its short side. A labelled face (benchmarks/face_labels_fcdb_val.json: the 47 people photos of
the validation list) is found when a detection's centre lies inside it and the two overlap by IoU >= 0.25;
"other detections" are those that match no labelled face, on the people photos and on the 153 other
validation photos (mostly false faces, some small unlabelled ones: look at them with ``--list``).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import box_iou
from torchvision.transforms.functional import pil_to_tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops.cropping.proposals import FaceDetector  # noqa: E402
from s2c_ops.data.fcdb import validation_files  # noqa: E402


def matches(found: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``[F, L]``: detection f matches labelled face l (centre inside, IoU >= 0.25)."""
    if not len(found) or not len(faces):
        return torch.zeros((len(found), len(faces)), dtype=torch.bool)
    centre = (found[:, None, :2] + found[:, None, 2:]) / 2
    inside = ((centre >= faces[None, :, :2]) & (centre <= faces[None, :, 2:])).all(-1)
    return inside & (box_iou(found, faces) >= 0.25)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "FCDB"))
    p.add_argument("--labels", default=str(ROOT / "benchmarks" / "face_labels_fcdb_val.json"))
    # The detector's own defaults unless given.
    p.add_argument("--min-face", type=float)
    p.add_argument("--thresholds", type=float, nargs=3)
    p.add_argument("--factor", type=float, help="the pyramid's scale step")
    p.add_argument("--candidates", type=int, nargs=3)
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--list", action="store_true", help="print each photo's unmatched detections")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    labels = json.loads(Path(args.labels).read_text())
    options = ("min_face", "thresholds", "factor", "candidates")
    detector = FaceDetector(**{k: getattr(args, k) for k in options if getattr(args, k) is not None})
    found_faces = total_faces = other_people = other_rest = 0
    seconds = 0.0
    files = validation_files()
    for name in files:
        photo = Image.open(Path(args.data) / "images" / name).convert("RGB")
        x = pil_to_tensor(photo)[None].float() / 255
        h, w = x.shape[-2:]
        scale = args.short_side / min(h, w)
        small = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
        started = time.perf_counter()
        found = detector(small)[0] / scale
        seconds += time.perf_counter() - started
        faces = torch.tensor(labels.get(name, []), dtype=torch.float32).view(-1, 4)
        hit = matches(found, faces)
        found_faces += int(hit.any(0).sum())
        total_faces += len(faces)
        unmatched = int((~hit.any(1)).sum())
        if name in labels:
            other_people += unmatched
        else:
            other_rest += unmatched
        if args.list and unmatched:
            print(name, found[~hit.any(1)].round().tolist())
    print(f"{detector}, short side {args.short_side}; {len(files)} validation photos, {len(labels)} with "
          f"{total_faces} labelled faces")
    print(f"labelled faces found: {found_faces}/{total_faces}; other detections: {other_people} on the people "
          f"photos, {other_rest} on the {len(files) - len(labels)} others; detector {1e3 * seconds / len(files):.1f} "
          "ms per photo")


if __name__ == "__main__":
    main()
