"""The frozen-backbone feature cache of FCDB training: per photo (and its mirror image), the backbone's
multi-scale map (:meth:`S2CNet.multi_scale`, float16) and the proposer's object boxes, computed once so that
the epochs train the rest of the model without running the backbone."""
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional

import torch
from torch import Tensor

from ..cropping.proposals import Proposer
from ..cropping.transforms import OfficialPreprocess, Resize
from ..ops.boxes import flip_boxes


@dataclass
class CachedPhoto:
    """One FCDB photo, ready for training: ``pixels`` (3, h, w) uint8, the model's input before
    normalisation; ``features`` (V, C, h/16, w/16) float16 and ``objects`` (V, D, 4) in model pixels, for the
    photo and (V = 2) its mirror image; ``crop``, ``pairs`` and ``votes`` as :class:`~s2c_ops.data.FCDB`
    gives them, in original pixels."""

    file: str
    geometry: Resize
    crop: Tensor
    pairs: Tensor
    votes: Tensor
    pixels: Tensor
    features: Tensor
    objects: Tensor

    def view(self, view: int, preprocess: OfficialPreprocess) -> Tensor:
        """The normalised model input (1, 3, h, w) of the photo (0) or its mirror image (1)."""
        pixels = self.pixels.flip(-1) if view else self.pixels
        return preprocess.normalise(pixels.float())[None]

    def to_dict(self) -> dict:
        return {"file": self.file, "original": list(self.geometry.original), "resized": list(self.geometry.resized),
                "crop": self.crop, "pairs": self.pairs, "votes": self.votes, "pixels": self.pixels,
                "features": self.features, "objects": self.objects}

    @classmethod
    def from_dict(cls, d: dict) -> "CachedPhoto":
        geometry = Resize(tuple(d["original"]), tuple(d["resized"]))
        return cls(d["file"], geometry, d["crop"], d["pairs"], d["votes"], d["pixels"], d["features"], d["objects"])


@torch.no_grad()
def cache_photos(model, items: Iterable[dict], proposer: Proposer, num_boxes: int, device: torch.device, *,
                 mirror: bool = True, preprocess: Optional[OfficialPreprocess] = None,
                 progress: Callable[[Iterable], Iterable] = iter) -> List[CachedPhoto]:
    """The cache of FCDB items (with pixels): the backbone in eval mode on ``device``, the photo and, with
    ``mirror``, its mirror image. The proposer runs on the photo; the mirror image's boxes are its boxes
    mirrored (as GAIC's flip augmentation moves the boxes), which halves the proposer's time."""
    preprocess = preprocess or OfficialPreprocess()
    model.eval()
    out = []
    for item in progress(items):
        if item["crop"] is None:
            continue
        resized = item["resized"]
        views = torch.stack([resized, resized.flip(-1)] if mirror else [resized]).to(device)
        features = model.multi_scale(preprocess.normalise(views)).half().cpu()
        objects = proposer(preprocess.unnormalised(views[:1]), num_boxes)[0].cpu()
        if mirror:
            objects = torch.stack([objects, flip_boxes(objects, resized.shape[-1])])
        else:
            objects = objects[None]
        out.append(CachedPhoto(item["file"], item["geometry"], item["crop"], item["pairs"], item["votes"],
                               resized.to(torch.uint8), features.contiguous(), objects))
    return out
