"""Speed of ``s2c crop`` on 20 photos, beside the bare model forward on the same images.

    python benchmarks/bench_cli.py                    # CPU, 2 torch threads, 3 rounds
    python benchmarks/bench_cli.py --rounds 5 --workers 4

The 20 inputs are the 4 demo photos (``s2c_ops/demo_photos``) as they are (3 PNG, 1 JPEG, 300-640 px)
and each re-encoded as JPEG (quality 92, ICC profile kept) at 1024, 2048, 3072 and 4032 px on the long
side (phone-camera size), in a temporary folder. One ratio (16:9), top-1, the default model and the
default proposer (MTCNN faces, then salient regions). Rows (medians over interleaved rounds, images/s = 20 / time):

* ``s2c crop`` as a program (a new Python process: interpreter start and imports included);
* ``cli.main`` in this process, writing crops (``--out``) or only records (``--json``), with JPEG
  ``draft()`` decoding for the model (the default) and without it;
* decode only: what the command's decoder costs for the model's input, draft on / off;
* the bare model forward on the same, already decoded and resized images: the scoring the command
  does (candidates, saliency proposer, model), and the model call alone.

The last column puts each time beside the bare forward (candidates + proposer + model): the decode and
I/O overhead as a ratio.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from s2c_ops import cli
from s2c_ops.cli.crop import decode as crop_decode, score as crop_score
from s2c_ops.cli.crop.args import Job, ratio_arg
from s2c_ops.cli.crop.inputs import Entry
from s2c_ops.cropping.cropper import Cropper

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "s2c_ops" / "demo_photos"
SIDES = (1024, 2048, 3072, 4032)


def make_inputs(folder: Path) -> list:
    files = []
    for src in sorted(p for p in DEMO.iterdir() if p.suffix.lower() in (".png", ".jpg")):
        shutil.copy(src, folder / src.name)
        files.append(folder / src.name)
        im = Image.open(src)
        icc = im.info.get("icc_profile")
        rgb = im.convert("RGB")
        for side in SIDES:
            scale = side / max(rgb.size)
            big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
            path = folder / f"{src.stem}_{side}.jpg"
            big.save(path, quality=92, **({"icc_profile": icc} if icc else {}))
            files.append(path)
    return files


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    try:
        photos = tmp / "photos"
        photos.mkdir()
        files = make_inputs(photos)
        n = len(files)
        out, records = tmp / "out", tmp / "records.jsonl"
        common = [str(photos), "--ratio", "16:9", "--workers", str(args.workers), "--batch-size", str(args.batch_size),
                  "--device", "cpu", "--overwrite"]

        def in_process(write: bool, draft: bool):
            def go():
                crop_decode.USE_DRAFT = draft
                try:
                    argv = ["crop", *common, "--json", str(records)] + (["--out", str(out)] if write else [])
                    assert cli.main(argv) == 0
                finally:
                    crop_decode.USE_DRAFT = True
            return go

        def program():
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            cmd = [sys.executable, "-m", "s2c_ops.cli", "crop", *common, "--out", str(out), "--json", str(records)]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)

        # The bare forward: the same images, decoded and resized beforehand.
        cropper = Cropper(batch_size=args.batch_size)
        job = Job([ratio_arg("16:9")], 1, None, None, False, True)
        detail = cropper.proposer.detail_factor  # as s2c crop decodes: for the faces' second look too
        decoded = [crop_decode.decode(str(f), cropper.preprocess, False, True, detail) for f in files]

        def scoring():
            outcomes = [crop_score.Outcome(Entry(str(f), str(f)), d) for f, d in zip(files, decoded)]
            crop_score.score_outcomes(cropper, outcomes, job, None)
            assert all(o.results for o in outcomes)

        # The model call alone, on exactly the inputs scoring() gives it.
        calls = []
        model = cropper.model
        cropper.model = lambda *a: (calls.append(a), model(*a))[1]
        scoring()
        cropper.model = model

        @torch.no_grad()
        def model_only():
            for a in calls:
                model(*a)

        def decode_only(draft: bool):
            return lambda: [crop_decode.decode(str(f), cropper.preprocess, False, draft, detail) for f in files]

        rows = {
            "s2c crop (new process, --out + --json)": program,
            "cli.main, --out + --json, draft": in_process(True, True),
            "cli.main, --out + --json, no draft": in_process(True, False),
            "cli.main, --json only, draft": in_process(False, True),
            "cli.main, --json only, no draft": in_process(False, False),
            "decode for the model only, draft": decode_only(True),
            "decode for the model only, no draft": decode_only(False),
            "bare forward: candidates + proposer + model": scoring,
            "bare forward: model call only": model_only,
        }
        for fn in rows.values():  # warm-up
            fn()
        times = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, fn in rows.items():
                times[name].append(timed(fn))
        med = {name: statistics.median(t) for name, t in times.items()}
        base = med["bare forward: candidates + proposer + model"]
        pixels = sum(Image.open(f).size[0] * Image.open(f).size[1] for f in files) / 1e6
        print(f"# {n} photos ({pixels:.0f} Mpx in all: 4 demo photos as they are + JPEG at {', '.join(map(str, SIDES))} px "
              f"long side), ratio 16:9, top-1, default model, CPU ({os.cpu_count()} cores), torch threads "
              f"{args.threads}, --workers {args.workers}, --batch-size {args.batch_size}; medians of {args.rounds} rounds")
        print("| run | time (s) | images/s | x bare forward |")
        print("| --- | ---: | ---: | ---: |")
        for name, t in med.items():
            print(f"| {name} | {t:.3f} | {n / t:.1f} | {t / base:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
