"""Small datasets made by the tests (GAICD and FCDB layouts, where the labels prefer crops centred on the object)
and a PNG whose header claims more pixels than Pillow opens."""
import json
import struct
import zlib
from pathlib import Path

import torch
from PIL import Image


def make_gaicd(root, n_train=12, n_test=0, *, pixels=False, size=(400, 300), crops=20, seed=0):
    """Writes annotations/, bbox/, split.json, image_sizes.json (and images/ with ``pixels``) under
    ``root``; returns the train and test ids."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    for sub in ("annotations", "bbox", "images/train", "images/test"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    splits = {"train": [str(1000 + i) for i in range(n_train)], "test": [str(2000 + i) for i in range(n_test)]}
    sizes = {}
    for split, ids in splits.items():
        for image_id in ids:
            sizes[image_id] = [w, h]
            ox, oy = (torch.rand(2, generator=g) * torch.tensor([w / 2, h / 2])).tolist()
            ow, oh = w * 0.3, h * 0.33
            lines = []
            for _ in range(crops):
                x1, y1 = (torch.rand(2, generator=g) * torch.tensor([w * 0.375, h / 3])).tolist()
                x2, y2 = x1 + w * 0.6, y1 + h * 0.63
                gap = abs((x1 + x2) / 2 - (ox + ow / 2)) / w + abs((y1 + y2) / 2 - (oy + oh / 2)) / h
                mos = max(1.0, min(5.0, 4.5 - 6 * gap))
                lines.append(f"{y1:.0f} {x1:.0f} {y2:.0f} {x2:.0f} {mos:.2f}")
            (root / "annotations" / f"{image_id}.txt").write_text("\n".join(lines) + "\n")
            box = f"{oy:.0f} {ox:.0f} {oy + oh:.0f} {ox + ow:.0f}"
            (root / "bbox" / f"{image_id}.txt").write_text("\n".join([box] * 10) + "\n")
            if pixels:
                image = Image.new("RGB", (w, h), (40, 60, 80))
                image.paste((220, 180, 60), (int(ox), int(oy), int(ox + ow), int(oy + oh)))
                image.save(root / "images" / split / f"{image_id}.jpg", quality=90)
    (root / "split.json").write_text(json.dumps(splits))
    (root / "image_sizes.json").write_text(json.dumps(sizes))
    return splits["train"], splits["test"]


def make_fcdb(root, n=6, *, layout="shared", size=(320, 240), seed=0, past_border=False):
    """Writes an FCDB folder (``layout`` "shared": train.json + images/; "release": the original release's
    cropping_training_set.json, cropping_testing_set.json and ranking_annotation.json, photos in data/):
    each photo a dark background with a bright square; the human crop is centred on the square, and in each
    pair the crop holding the square wins. Returns the photo file names."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    folder = root / ("images" if layout == "shared" else "data")
    folder.mkdir(parents=True, exist_ok=True)
    entries, files = [], []
    for i in range(n):
        file = f"{1000 + i}_abc_b.jpg"
        ox, oy = (torch.rand(2, generator=g) * torch.tensor([w * 0.6, h * 0.6])).tolist()
        side = min(w, h) * 0.3
        image = Image.new("RGB", (w, h), (30, 40, 50))
        image.paste((230, 200, 90), (int(ox), int(oy), int(ox + side), int(oy + side)))
        image.save(folder / file, quality=92)
        cw, ch = w * 0.6, h * 0.6
        cx = min(max(ox + side / 2 - cw / 2, 0), w - cw)
        cy = min(max(oy + side / 2 - ch / 2, 0), h - ch)
        crop = [round(cx), round(cy), round(cw), round(ch)]
        if past_border and i == 0:
            crop = [w - round(cw) + 10, crop[1], round(cw), crop[3]]  # 10 px past the right border: clipped
        away = [0 if cx > w / 2 else round(w - cw), 0 if cy > h / 2 else round(h - ch), round(cw), round(ch)]
        pairs = [{"crop_0": crop, "crop_1": away, "votes_0": 4, "votes_1": 1}] * 3
        if past_border and i == 1:
            pairs = pairs + [{"crop_0": [-500, 0, 520, 100], "crop_1": crop, "votes_0": 0, "votes_1": 5}]  # dropped
        entries.append({"file": file, "width": w, "height": h, "crop": crop, "pairs": pairs})
        files.append(file)
    if layout == "shared":
        (root / "train.json").write_text(json.dumps(entries))
    else:
        url = "https://farm1.staticflickr.com/1/{}"
        half = n // 2
        crops = [{"url": url.format(e["file"]), "flickr_photo_id": i, "crop": e["crop"]} for i, e in enumerate(entries)]
        (root / "cropping_training_set.json").write_text(json.dumps(crops[:half]))
        (root / "cropping_testing_set.json").write_text(json.dumps(crops[half:]))
        ranking = [{"url": url.format(e["file"]), "crops": [{"crop_0": p["crop_0"], "crop_1": p["crop_1"],
                                                             "vote_for_0": p["votes_0"], "vote_for_1": p["votes_1"]}
                                                            for p in e["pairs"]]} for e in entries]
        (root / "ranking_annotation.json").write_text(json.dumps(ranking))
    return files


def png_bomb(path: Path, width=100_000, height=100_000) -> None:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
