"""Small GAICD-layout datasets made by the tests, where the MOS prefers crops centred on the object."""
import json

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
