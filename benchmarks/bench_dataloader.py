"""AestheticCrop in a real DataLoader beside Kornia's RandomResizedCrop, measured in the same run.

    python benchmarks/bench_dataloader.py                        # 16 FCDB photos, 3 epochs, 0 and 2 workers
    python benchmarks/bench_dataloader.py --photos 64 --modes rrc,table,lazy

Photos: the first ``--photos`` of ../shared/data/FCDB/images (sorted), decoded from JPEG with Pillow in
``__getitem__`` every time, resized to 240x320 (height x width; portrait photos are stretched, so that
batches collate) and made float in [0, 1]; the crop is 224x224 (ratio 1:1). Batch 8, no shuffling.

Set-ups: the augmentation per sample (in ``__getitem__``, so in the workers) or per batch (after collation,
in the main process); 0 workers, or 2 (``persistent_workers=True``: a worker keeps what it filled lazily).
Within a set-up the modes' epochs are interleaved (epoch 1 of every mode, then epoch 2, ...), so each ratio
compares epochs measured under the same load of the machine. Where the augmentation runs in the main
process, each is called once before the first epoch (untimed; the lazy mode on a photo of its own), so
first-call costs (the model's load among them) are not counted as an epoch's; workers start within the
first epoch, for every mode alike.

Modes:
- ``rrc``: ``kornia.augmentation.RandomResizedCrop((224, 224))``, the baseline.
- ``none``: ``AestheticCrop("1:1", size=224, top_k=3)`` without a table: every epoch scores every photo,
  so it runs ``--none-epochs`` (default 1) epochs only.
- ``table``: the same with a table precomputed by ``CropTable.build`` over the same pixels (index keys),
  saved and loaded (``lazy=False``: a worker never loads a model).
- ``fingerprint``: the same scores under the photos' fingerprints (no keys passed).
- ``lazy``: an empty table that fills itself in the first epoch (``CropTable("index")``).

Printed per set-up and mode: images/s of each epoch and its ratio to RandomResizedCrop's images/s in the
same epoch and set-up; memory per worker at the end of the set-up (the largest of its workers): RSS and
USS (private pages: the table's memory-mapped file and what the parent shares are not counted), from
/proc; the main process's memory at the end. Also the precompute pass's images/s. The model is the
package's default on the CPU, ``--threads`` threads in the main process (workers: 1 thread each, as the
DataLoader sets).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import kornia.augmentation as K
import torch
from PIL import Image

from s2c_kornia import AestheticCrop, CropTable
from s2c_ops.cropping.table_keys import fingerprints

FCDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "FCDB" / "images"
SIZE = (240, 320)
OUT = (224, 224)
MODES = ("rrc", "none", "table", "fingerprint", "lazy")


def memory_mb(pid="self"):
    """(RSS, USS) of a process in MB, from /proc/PID/smaps_rollup."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Rss", 0) / 1024, uss / 1024


def decode(path):
    with Image.open(path) as im:
        im.draft("RGB", (SIZE[1], SIZE[0]))
        im = im.convert("RGB").resize((SIZE[1], SIZE[0]), Image.BILINEAR)
        return torch.from_numpy(__import__("numpy").asarray(im).copy()).permute(2, 0, 1).float() / 255


class Photos(torch.utils.data.Dataset):
    """(image, index): the photo decoded each time, augmented here when ``aug`` is given."""

    def __init__(self, files, aug=None, keyed=False):
        self.files, self.aug, self.keyed = files, aug, keyed

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        x = decode(self.files[i])
        if self.aug is not None:
            x = self.aug(x, keys=[i])[0] if self.keyed else self.aug(x)[0]
        return x, i


def augmentation(mode, tables):
    if mode == "rrc":
        return K.RandomResizedCrop(OUT, cropping_mode="resample"), False
    if mode == "none":
        return AestheticCrop("1:1", size=OUT, top_k=3), False
    if mode == "table":
        return AestheticCrop("1:1", size=OUT, top_k=3, table=CropTable.load(tables["index"])), True
    if mode == "fingerprint":
        return AestheticCrop("1:1", size=OUT, top_k=3, table=CropTable.load(tables["fingerprint"])), False
    if mode == "lazy":
        return AestheticCrop("1:1", size=OUT, top_k=3, table=CropTable("index")), True
    raise ValueError(mode)


class Run:
    """One mode in one set-up: its loader, kept across epochs (persistent workers)."""

    def __init__(self, files, mode, per_sample, workers, tables):
        self.aug, self.keyed = augmentation(mode, tables)
        self.per_sample, self.count = per_sample, len(files)
        data = Photos(files, self.aug if per_sample else None, self.keyed)
        self.loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=workers,
                                                  persistent_workers=workers > 0)
        self.rates = []
        if workers == 0 or not per_sample:  # one call first, untimed: first-call costs are not per-epoch costs
            x = decode(files[0])[None]
            if mode == "lazy":  # a photo of its own, so that the first epoch still fills the whole dataset
                self.aug(torch.rand_like(x), keys=[len(files)])
            else:
                self.aug(x, keys=[0]) if self.keyed else self.aug(x)

    def epoch(self):
        start = time.perf_counter()
        for x, index in self.loader:
            if not self.per_sample:
                x = self.aug(x, keys=index) if self.keyed else self.aug(x)
        self.rates.append(self.count / (time.perf_counter() - start))

    def worker_memory(self):
        """The largest (RSS, USS) of the workers, MB; None without workers."""
        it = getattr(self.loader, "_iterator", None)
        workers = getattr(it, "_workers", None)
        if not workers:
            return None
        return max(memory_mb(w.pid) for w in workers)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--none-epochs", type=int, default=1,
                        help="epochs of the mode without a table (each costs the same; default 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", default="0,2", help="comma-separated worker counts (default 0,2)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    if not FCDB.is_dir():
        print(f"bench_dataloader: skipped: no FCDB photos at {FCDB} (../shared/data/FCDB/images)")
        return 0
    files = sorted(FCDB.glob("*.jpg"))[: args.photos]
    modes = [m for m in args.modes.split(",") if m]
    if "rrc" not in modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: rrc (the baseline) and any of {', '.join(MODES)}")
    workers = [int(w) for w in args.workers.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        if {"table", "fingerprint"} & set(modes):
            pixels = [decode(f) for f in files]
            start = time.perf_counter()
            table = CropTable.build(pixels, ["1:1"], keys="index", batch_size=8, progress=False)
            took = time.perf_counter() - start
            print(f"precompute: {len(files)} photos in {took:.1f} s = {len(files) / took:.2f} images/s "
                  f"(CropTable.build, default model, {args.threads} threads, batch 8, 240x320)")
            tables["index"] = os.path.join(tmp, "index.safetensors")
            table.save(tables["index"])
            # The same scores under the photos' fingerprints (no second scoring pass).
            by_pixels = CropTable("fingerprint", lazy=False).bind(table.ratios, table.model, table.proposer)
            found, boxes, scores = table.lookup(torch.arange(len(files)), SIZE, "1:1")
            sizes = torch.tensor([SIZE] * len(files))
            by_pixels.add(fingerprints(torch.stack(pixels)), sizes, boxes[:, None], scores[:, None])
            tables["fingerprint"] = os.path.join(tmp, "fingerprint.safetensors")
            by_pixels.save(tables["fingerprint"])
        load = os.getloadavg()[0]
        print(f"\n{len(files)} FCDB photos decoded from JPEG -> 240x320 -> 224x224, batch 8, {args.epochs} epochs "
              f"({args.none_epochs} without a table), torch {torch.__version__}, {args.threads} threads, "
              f"{os.cpu_count()} CPUs, load average {load:.2f} at the start\n")
        head = " | ".join(f"epoch {e + 1} img/s (x RRC)" for e in range(args.epochs))
        print(f"| set-up | mode | {head} | worker RSS / USS MB |")
        print("| --- | --- |" + " ---: |" * (args.epochs + 1))
        for per_sample in (True, False):
            for w in workers:
                setup = f"{'per sample' if per_sample else 'per batch'}, {w} workers"
                runs = {mode: Run(files, mode, per_sample, w, tables) for mode in modes}
                for e in range(args.epochs):  # the modes' epochs interleaved: they share the machine's load
                    for mode, r in runs.items():
                        if mode != "none" or e < args.none_epochs:
                            r.epoch()
                base = runs["rrc"].rates
                for mode, r in runs.items():
                    cells = " | ".join(f"{x:.1f} ({x / b:.2f})" for x, b in zip(r.rates, base))
                    cells += " | -" * (args.epochs - len(r.rates))
                    mem = r.worker_memory()
                    mem = "-" if mem is None else f"{mem[0]:.0f} / {mem[1]:.0f}"
                    print(f"| {setup} | {mode} | {cells} | {mem} |", flush=True)
                del runs
        rss, uss = memory_mb()
        print(f"\nmain process at the end: RSS {rss:.0f} MB, USS {uss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
