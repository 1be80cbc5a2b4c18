"""Draws docs/aesthetic_crop.jpg: the demo photos as one batch before and after
AestheticCrop(ratio=1, size=192) with the default model.   python docs/augmentation_figure.py"""
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from s2c_kornia import AestheticCrop
from s2c_ops.cropping.images import image_to_tensor

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "s2c_ops" / "demo_photos"


def main() -> None:
    photos = [Image.open(p) for p in sorted(PHOTOS.glob("*")) if p.suffix in (".png", ".jpg")]
    batch = torch.stack([
        F.interpolate(image_to_tensor(p)[None].float() / 255, size=(256, 384), mode="bilinear", align_corners=False)[0]
        for p in photos
    ])
    crop = AestheticCrop(ratio=1.0, size=192)
    out = crop(batch)
    params = crop._params  # the chosen crops, drawn on the inputs
    sheet = Image.new("RGB", (len(photos) * 394 + 10, 256 + 192 + 30), "white")
    for i in range(len(photos)):
        before = Image.fromarray((batch[i].permute(1, 2, 0) * 255).round().byte().numpy())
        src = params["src"][i]
        x0, y0 = src[0].tolist()
        x1, y1 = src[2].tolist()
        ImageDraw.Draw(before).rectangle([x0, y0, x1, y1], outline=(255, 40, 40), width=3)
        after = Image.fromarray((out[i].clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy())
        sheet.paste(before, (10 + i * 394, 10))
        sheet.paste(after, (10 + i * 394 + 96, 256 + 20))
    sheet.save(HERE / "aesthetic_crop.jpg", quality=85)


if __name__ == "__main__":
    main()
