"""Phone-size photos for the benchmarks: photos enlarged and saved as JPEGs (what the Cropper decodes reduced
when it is given one opened and not decoded yet), and a photo decoded in full (what it is given otherwise)."""
from pathlib import Path
from typing import Tuple

from PIL import Image


def enlarged(photo: Path, long_side: int, folder: Path) -> Tuple[Path, Tuple[float, float]]:
    """``photo`` enlarged to ``long_side`` pixels on its long side (Lanczos), saved as a JPEG (quality 90) in
    ``folder``, and the (x, y) scale of its pixels."""
    image = Image.open(photo).convert("RGB")
    scale = long_side / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    path = folder / f"{photo.stem}.jpg"
    image.resize(size, Image.LANCZOS).save(path, quality=90)
    return path, (size[0] / image.width, size[1] / image.height)


def decoded(path: Path) -> Image.Image:
    """The photo at ``path``, decoded in full."""
    image = Image.open(path)
    image.load()
    return image
