"""The inputs the saliency proposer's frozen boxes (golden/saliency_boxes.pt) were made from: the demo
photos, synthetic blobs and random images, each made the same way on every run."""
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from conftest import REPO

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
#: Proposer settings besides the default: no area floor (more, smaller components) and a tight NMS.
SETTINGS = {
    "default": {},
    "small": {"min_area": 0.0, "nms_threshold": 0.3, "levels": (0.1, 0.25, 0.5, 0.75, 0.9)},
}


def photo(name: str) -> Tensor:
    with Image.open(REPO / "s2c_ops" / "demo_photos" / name) as im:
        array = np.asarray(im.convert("RGB")).copy()
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255


def model_size(image: Tensor, short: int = 256) -> Tensor:
    h, w = image.shape[-2:]
    s = short / min(h, w)
    return F.interpolate(image, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True)


def blobs(batch: int = 3, height: int = 72, width: int = 104, seed: int = 0, count: int = 3, min_side: int = 6) -> Tensor:
    """Synthetic images: a textured background with ``count`` bright, coloured rectangles each."""
    g = torch.Generator().manual_seed(seed)
    images = 0.3 + 0.1 * torch.rand(batch, 3, height, width, generator=g)
    for b in range(batch):
        for _ in range(count):
            h = int(torch.randint(min_side, height // 2, (1,), generator=g))
            w = int(torch.randint(min_side, width // 2, (1,), generator=g))
            y = int(torch.randint(0, height - h, (1,), generator=g))
            x = int(torch.randint(0, width - w, (1,), generator=g))
            images[b, :, y : y + h, x : x + w] = torch.rand(3, 1, 1, generator=g)
    return images


def smooth_noise(batch: int, height: int, width: int, cells: Tuple[int, int], seed: int) -> Tensor:
    """Random colours on a coarse grid, upsampled: many salient regions of many shapes."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, *cells, generator=g)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def cases() -> Dict[str, Tensor]:
    out = {}
    for name in PHOTOS:
        image = photo(name)
        out[f"{name}/native"] = image
        out[f"{name}/model"] = model_size(image)
    out["blobs"] = blobs(6, 72, 104, seed=0, count=4, min_side=4)
    out["uniform"] = torch.rand(8, 3, 256, 384, generator=torch.Generator().manual_seed(0))
    for i, cells in enumerate(((4, 6), (9, 13), (17, 25))):
        out[f"smooth{cells[0]}"] = smooth_noise(6, 96, 144, cells, seed=10 + i)
    out["tall"] = smooth_noise(3, 200, 60, (12, 4), seed=20)
    out["flat"] = torch.full((2, 3, 40, 60), 0.5)
    return out


def crop_cases() -> Dict[str, Tuple[Tensor, Tensor]]:
    """AestheticCrop with the geometry prior and the saliency proposer (no faces) on the demo photos at
    256x384: each batch's crop boxes and scores."""
    from s2c_kornia import AestheticCrop
    from s2c_ops.models.prior import GeometryPrior

    aug = AestheticCrop("4:3", size=(192, 256), model=GeometryPrior.default(), proposer="saliency")
    images = torch.cat([F.interpolate(photo(n), size=(256, 384), mode="bilinear", antialias=True) for n in PHOTOS])
    out = {}
    for name, batch in (("photos", images), ("smooth", smooth_noise(8, 256, 384, (9, 13), seed=30))):
        aug(batch)
        out[name] = (aug._params["crop_box"].clone(), aug._params["crop_score"].clone())
    return out
