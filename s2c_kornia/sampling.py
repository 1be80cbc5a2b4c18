"""The ``top_k`` draw of :class:`~s2c_kornia.AestheticCrop`: one candidate per image among the ``top_k`` best,
weighted by ``softmax(score / temperature)``, from one uniform number per image drawn beforehand (so the
choice follows the caller's generator and seeding)."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from s2c_ops.cropping.face_rule import FACE_CUT_PENALTY


def pick_candidates(boxes: Tensor, scores: Tensor, draw: Optional[Tensor], top_k: int,
                    temperature: Optional[float], same_on_batch: bool = False) -> Tuple[Tensor, Tensor]:
    """Per image, the chosen candidate box (B, 4) and its score (B,), on the scores' device.

    ``boxes`` are the candidates of every image (N, 4), or of each image (B, N, 4); ``scores`` (B, N) (``-inf``
    for a missing candidate); ``draw`` (B,) uniform numbers in [0, 1), needed for ``top_k > 1``;
    ``temperature=None`` weighs the ``top_k`` best equally. A draw never picks a candidate that cuts more
    faces than the best one: the face rule's penalty (at least ``FACE_CUT_PENALTY`` per face cut) is in the
    scores, and candidates more than half of it below the best are left out. ``same_on_batch``: one choice
    for the whole batch, by the mean score (shared ``boxes`` only)."""
    b = scores.shape[0]
    if same_on_batch:
        scores = scores.mean(0, keepdim=True)
    k = min(top_k, scores.shape[1])
    top, index = torch.sort(scores, dim=1, descending=True, stable=True)
    top, index = top[:, :k], index[:, :k]
    choice = torch.zeros(len(index), dtype=torch.long, device=index.device)
    if k > 1:
        if draw is None:
            raise RuntimeError("params has no 'draw' for top_k > 1: make them with forward_parameters")
        logits = torch.zeros_like(top) if temperature is None else top / temperature
        allowed = top >= top[:, :1] - FACE_CUT_PENALTY / 2
        weights = torch.softmax(logits.masked_fill(~allowed, -math.inf), dim=1)
        cdf = weights.cumsum(1)
        u = draw.to(cdf.device, cdf.dtype)[: len(cdf), None]
        choice = (cdf < u * cdf[:, -1:]).sum(1).clamp_max(k - 1)
    rows = torch.arange(len(index), device=index.device)
    picked, score = index[rows, choice], top[rows, choice]
    if same_on_batch:
        picked, score = picked.expand(b), score.expand(b)
    return (boxes[picked] if boxes.dim() == 2 else boxes[rows, picked]), score
