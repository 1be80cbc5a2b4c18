"""The default Cropper per photo against the geometry prior's and smartcrop.py's, in one run (the faces/speed
issue's target: the default at most 3x smartcrop.py).

    python benchmarks/bench_cropper.py [--data ../shared/data/FCDB] [--photos 30] [--threads 2] [--rounds 3]
                                       [--long-side 4000] [--people] [--fastest]

Photos: the first ``--photos`` of the FCDB validation list (about 800 px; the demo photos when the FCDB
folder is absent); with ``--people``, the first of the labelled people photos of ``faces_kept.py``
(``benchmarks/face_labels_fcdb_val.json``: where the faces' second look runs); with ``--long-side N``, the
same photos enlarged to N pixels on the long side (Lanczos) and saved as JPEG (quality 90) in a temporary
folder first: phone-size photos (4000: about 12 MP). Each call opens the file and crops it to ``--ratio``,
decode included: the Croppers
``Cropper.crop(Image.open(path), ratio)`` (the package's one image path), smartcrop.py (``pip install smartcrop``,
benchmark-only) ``SmartCrop().crop(image, W, H)`` with ``W x H`` the photo's largest crop of the ratio (the
same task: the best crop in the photo's pixels) and, for scale, a 320x180 thumbnail target (it pre-scales
the photo to about the target's size, so its time grows with the target), the default with its face
detector's second look turned off (``FaceDetector(second_look=None)``: what the second look costs), the
default given the photo decoded (``image.load()`` first: no JPEG draft, which the Cropper takes for
a JPEG opened and not decoded yet, but ``reduce()`` before the conversion; both only on photos four times
the pixels the model needs, so phone-size ones) and given it as a uint8 tensor (taken in full). Rounds
interleave the contenders; each figure is the median over rounds of the mean milliseconds per photo. With
``--fastest``, each round times each photo with every contender in turn, and each figure is the mean over
photos of each photo's fastest round (robust to bursts of other work on a shared machine, which a round's
mean is not). The profile line splits the default's time into
decode, the proposer (faces, saliency) and the rest (the model and the candidates), with the same calls
the Cropper makes.
"""
import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.candidates import parse_ratio  # noqa: E402
from s2c_ops.cropping.images import image_to_tensor  # noqa: E402
from s2c_ops.cropping.proposals import FaceDetector, FacesFirst, SaliencyProposer  # noqa: E402
from s2c_ops.data.fcdb import validation_files  # noqa: E402
from s2c_ops.models import create_model  # noqa: E402
from s2c_ops.models.registry import model_description  # noqa: E402
from phone_size import decoded, enlarged  # noqa: E402


def per_photo_ms(fn, photos) -> float:
    started = time.perf_counter()
    for photo in photos:
        fn(photo)
    return (time.perf_counter() - started) * 1e3 / len(photos)


def smartcrop_fns(ratio: float):
    """smartcrop.py for the photo's largest crop of ``ratio`` and for a 320x180 thumbnail, by row name (none
    when it is not installed)."""
    try:
        import smartcrop
    except ImportError:
        return {}
    finder = smartcrop.SmartCrop()

    def largest(path):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        scale = min(w / ratio, h)
        return finder.crop(image, int(ratio * scale), int(scale))

    return {"smartcrop.py, largest crop": largest,
            "smartcrop.py, 320x180": lambda path: finder.crop(Image.open(path).convert("RGB"), 320, 180)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "FCDB"))
    p.add_argument("--photos", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ratio", default="16:9")
    p.add_argument("--long-side", type=int, default=None, help="enlarge the photos to this long side first")
    p.add_argument("--people", action="store_true", help="the labelled people photos of faces_kept.py")
    p.add_argument("--fastest", action="store_true", help="per photo, the fastest of the rounds")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.data) / "images"
    if folder.is_dir():
        if args.people:
            names = sorted(json.loads((ROOT / "benchmarks" / "face_labels_fcdb_val.json").read_text()))
            where = "FCDB validation people photos"
        else:
            names, where = validation_files(), "FCDB validation photos"
        photos = [folder / name for name in names[: args.photos]]
        where = f"the first {len(photos)} {where}"
    else:
        photos = sorted(p for p in (ROOT / "s2c_ops" / "demo_photos").glob("*.*") if p.suffix in (".png", ".jpg"))
        where = f"the {len(photos)} demo photos"
    if args.long_side:
        enlarged_folder = tempfile.TemporaryDirectory()  # removed when the run ends
        photos = [enlarged(photo, args.long_side, Path(enlarged_folder.name))[0] for photo in photos]
        where += f" enlarged to {args.long_side} px on the long side"
    prior, default, description = create_model("prior"), create_model("default"), model_description("default")
    first_pass = FacesFirst(SaliencyProposer(), FaceDetector(second_look=None))
    unlooked = "default without the faces' second look"
    croppers = {"geometry prior": Cropper(prior), description: Cropper(default), unlooked: Cropper(default, first_pass)}
    timed = {name: (lambda photo, c=c: c.crop(Image.open(photo), args.ratio)) for name, c in croppers.items()}
    decoded_row, as_tensor = "default, given the photo decoded", "default, as a tensor (no reduction)"
    timed[decoded_row] = lambda photo: croppers[description].crop(decoded(photo), args.ratio)
    timed[as_tensor] = lambda photo: croppers[description].crop(image_to_tensor(decoded(photo)), args.ratio)
    smart = smartcrop_fns(parse_ratio(args.ratio))
    timed.update(smart)
    main_cropper = croppers[description]

    def decode(photo):
        return main_cropper._prepare(Image.open(photo))

    def propose(photo):
        resized, _, detail = main_cropper._prepare(Image.open(photo))
        main_cropper.proposer.propose_objects(main_cropper.preprocess.unnormalised(resized)[None].float(),
                                              main_cropper.num_boxes, details=[detail])

    parts = {"decode and resize": decode, "decode, resize and proposer": propose}
    for fn in list(timed.values()) + list(parts.values()):  # warm-up
        per_photo_ms(fn, photos[:3])
    contenders = list(timed.items()) + list(parts.items())
    if args.fastest:
        fastest = {name: [math.inf] * len(photos) for name, _ in contenders}
        for _ in range(args.rounds):
            for i, photo in enumerate(photos):
                for name, fn in contenders:
                    fastest[name][i] = min(fastest[name][i], per_photo_ms(fn, [photo]))
        ms = {name: statistics.fmean(v) for name, v in fastest.items()}
        how = f"per photo the fastest of {args.rounds} rounds, contenders interleaved per photo"
    else:
        rounds = {name: [] for name, _ in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders:
                rounds[name].append(per_photo_ms(fn, photos))
        ms = {name: statistics.median(v) for name, v in rounds.items()}
        how = f"medians of {args.rounds} interleaved rounds"
    print(f"*CPU, {args.threads} threads, torch {torch.__version__}; {where}, decode included, ratio {args.ratio}, "
          f"the default proposer; {how}*\n")
    print("| per photo | ms |\n| --- | ---: |")
    for name in timed:
        print(f"| {name} | {ms[name]:.1f} |")
    print(f"| default / prior | {ms[description] / ms['geometry prior']:.2f}x |")
    print(f"| default / default without the second look | {ms[description] / ms[unlooked]:.2f}x |")
    print(f"| default / default given the photo decoded | {ms[description] / ms[decoded_row]:.2f}x |")
    print(f"| default / default as a tensor | {ms[description] / ms[as_tensor]:.2f}x |")
    for name in smart:
        print(f"| default / {name} | {ms[description] / ms[name]:.2f}x |")
    decode_ms = ms["decode and resize"]
    proposer_ms = ms["decode, resize and proposer"] - decode_ms
    print(f"\nprofile of the default: decode and resize {decode_ms:.1f} ms, proposer {proposer_ms:.1f} ms, "
          f"model and the rest {ms[description] - decode_ms - proposer_ms:.1f} ms")


if __name__ == "__main__":
    main()
