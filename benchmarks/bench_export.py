"""The exported default scorer against the Cropper: same top-1 crop, same scores, and its time.

    python benchmarks/bench_export.py [--data ../shared/data/FCDB] [--ratios 16:9,1:1] [--limit N] [--aoti]
                                      [--onnx scorer.onnx]

Photos: the demo photos, then the FCDB validation split (the package's list; skipped, and said so, when the
folder is absent). Per photo and ratio: the Cropper's best crop (``Cropper.crop``) and the exported model's
(``s2c export``'s ONNX file run by onnxruntime, and with ``--aoti`` the AOTInductor package), the caller's
steps before and after the model run with the Cropper's parts (``s2c_ops.export.caller_inputs`` /
``best_index``). Reported: the share of cases with the same top-1 crop, the largest score difference, and
the time of the model call alone on the same inputs (batch of one, the second call of each: see
:func:`warm_timed`): eager (the Cropper's fused model) against each exported form, in this run.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2c_ops import Cropper  # noqa: E402
from s2c_ops.cropping.candidates import parse_ratio  # noqa: E402
from s2c_ops.cropping.images import load_image  # noqa: E402
from s2c_ops.data.fcdb import validation_files  # noqa: E402
from s2c_ops.export import best_index, caller_inputs, export_program, write_aoti, write_onnx  # noqa: E402
from s2c_ops.models import create_model  # noqa: E402
from s2c_ops.models.exportable import INPUT_NAMES, SetScorer  # noqa: E402


def photos(data: Path, limit: int):
    demo = sorted(p for p in (ROOT / "s2c_ops" / "demo_photos").iterdir() if p.suffix in (".png", ".jpg"))
    fcdb = []
    if (data / "images").is_dir():
        fcdb = [data / "images" / name for name in validation_files() if (data / "images" / name).exists()]
    else:
        print(f"FCDB validation skipped: {data / 'images'} is not there")
    return demo, fcdb[:limit] if limit else fcdb


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def warm_timed(fn):
    """The second call's result and time: the first pays for one-off work at a new image size (oneDNN's
    weight packing in the fused eager model, onnxruntime's and AOTInductor's first run of a shape)."""
    fn()
    return timed(fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "FCDB")
    parser.add_argument("--ratios", default="16:9,1:1")
    parser.add_argument("--limit", type=int, default=0, help="FCDB photos at most (0: all 200)")
    parser.add_argument("--onnx", type=Path, help="an ONNX file from s2c export (default: exported here)")
    parser.add_argument("--aoti", action="store_true", help="also the AOTInductor package (compiled here)")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model("default")
    cropper = Cropper(model)
    runners = {}
    with tempfile.TemporaryDirectory() as folder:
        path = args.onnx
        if path is None:
            program, seconds = timed(lambda: export_program(SetScorer(model)))
            path, onnx_seconds = timed(lambda: write_onnx(program, Path(folder) / "scorer.onnx"))
            print(f"torch.export {seconds:.0f} s, ONNX {onnx_seconds:.0f} s")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runners["onnxruntime"] = lambda x: torch.from_numpy(
            session.run(None, {name: getattr(x, name).numpy() for name in INPUT_NAMES})[0])
        if args.aoti:
            from torch._inductor import aoti_load_package

            package, seconds = timed(lambda: write_aoti(export_program(SetScorer(model)), Path(folder) / "scorer.pt2"))
            print(f"AOTInductor package compiled in {seconds:.0f} s")
            compiled = aoti_load_package(str(package))
            runners["aoti"] = lambda x: compiled(x.images, x.crops, x.objects, x.faces)
        run(cropper, runners, args)


def run(cropper: Cropper, runners, args) -> None:
    ratios = [parse_ratio(r) for r in args.ratios.split(",")]
    demo, fcdb = photos(args.data, args.limit)
    eager_time = 0.0
    same = {name: 0 for name in runners}
    worst = {name: 0.0 for name in runners}
    times = {name: 0.0 for name in runners}
    cases = 0
    misses = []
    for done, path in enumerate(demo + fcdb):
        if done % 20 == 0:
            print(f"{done}/{len(demo) + len(fcdb)} photos", file=sys.stderr, flush=True)
        photo = load_image(path)
        for ratio in ratios:
            inputs = caller_inputs(cropper, photo, ratio)
            with torch.no_grad():
                eager, seconds = warm_timed(lambda: cropper.model(
                    inputs.images, list(inputs.crops), list(inputs.objects), groups=[[inputs.crops.shape[1]]],
                    faces=inputs.faces.tolist()))
            eager_time += seconds
            (result,) = cropper.crop(photo, ratio)
            cases += 1
            for name, runner in runners.items():
                scores, seconds = warm_timed(lambda: runner(inputs))
                times[name] += seconds
                worst[name] = max(worst[name], float((scores.reshape(-1) - eager).abs().max()))
                if torch.equal(inputs.candidates[best_index(cropper, scores, inputs)], result.boxes[0]):
                    same[name] += 1
                else:
                    misses.append((name, path.name, ratio))
    print(f"{len(demo)} demo photos + {len(fcdb)} FCDB validation photos x {len(ratios)} ratios = {cases} cases; "
          f"eager model call {1e3 * eager_time / cases:.1f} ms/case ({torch.get_num_threads()} threads)")
    print("| exported | same top-1 crop as Cropper | max score difference | model call, ms/case | eager / exported |")
    print("| --- | --- | --- | --- | --- |")
    for name in runners:
        print(f"| {name} | {100 * same[name] / cases:.1f}% ({same[name]}/{cases}) | {worst[name]:.2e} | "
              f"{1e3 * times[name] / cases:.1f} | {eager_time / times[name]:.2f}x |")
    for miss in misses:
        print("different top-1:", *miss)


if __name__ == "__main__":
    main()
