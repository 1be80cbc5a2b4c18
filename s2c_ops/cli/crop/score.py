"""Scoring in ``s2c crop``: the object boxes given with ``--boxes``, and the batched scoring of decoded
inputs (the Cropper's batched scoring, one call per group of same-size model inputs). The model is chosen by :mod:`s2c_ops.cli.models`."""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ...cropping.candidates import candidate_crops
from ...json_values import finite_number
from ...ops.boxes import first_outside
from .args import Job
from .decode import Decoded
from .inputs import Entry


@dataclass
class Outcome:
    """One input on its way through: decoded pixels, then per ratio text either ``(boxes, scores)``
    or an error message, then the files written."""

    entry: Entry
    decoded: Optional[Decoded] = None
    error: Optional[str] = None  # the whole input failed
    results: Dict[str, tuple] = field(default_factory=dict)  # ratio text -> (boxes, scores) or error str
    outputs: Dict[str, List[str]] = field(default_factory=dict)
    shows: Dict[str, str] = field(default_factory=dict)
    unwritable: Optional[str] = None  # a write failed for want of space or permission: the run stops


class BoxesFile:
    """``--boxes FILE``: object boxes per input, in upright original pixels."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"--boxes {path}: cannot read it as JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--boxes {path}: expected a JSON object mapping file names to box lists")
        self.path = path
        self.boxes: Dict[str, torch.Tensor] = {}
        for key, value in data.items():
            ok = isinstance(value, list) and all(
                isinstance(b, list) and len(b) == 4 and all(finite_number(v) for v in b) for b in value)
            if not ok:
                raise ValueError(f"--boxes {path}: entry {key!r} must be a list of [x1, y1, x2, y2] number lists")
            empty = next((b for b in value if not (b[0] < b[2] and b[1] < b[3])), None)
            if empty is not None:
                raise ValueError(f"--boxes {path}: entry {key!r} has the box {empty}, which is empty or inverted "
                                 "(x1 < x2 and y1 < y2 are needed)")
            self.boxes[key] = torch.tensor(value, dtype=torch.float32).reshape(-1, 4)
        self.absolute = {os.path.abspath(k): k for k in self.boxes}
        names: Dict[str, List[str]] = {}
        for k in self.boxes:
            names.setdefault(os.path.basename(k), []).append(k)
        self.by_name = {n: ks[0] for n, ks in names.items() if len(ks) == 1}

    def lookup(self, entry: Entry, height: int, width: int):
        """The input's boxes, or an error message (no entry, or a box wholly outside the upright ``height`` x
        ``width`` photo: boxes in other pixels, e.g. of a resized copy)."""
        for key in (entry.file, self.absolute.get(os.path.abspath(entry.file)), self.by_name.get(os.path.basename(entry.file))):
            if key is not None and key in self.boxes:
                box = first_outside(self.boxes[key], (height, width))
                if box is not None:
                    return (f"--boxes {self.path}: the box {box} lies outside the {width}x{height} photo (boxes are "
                            "in the upright photo's pixels)")
                return self.boxes[key]
        return f"no entry for this file in --boxes {self.path}"


def score_outcomes(cropper, outcomes: List[Outcome], job: Job, given: Optional[BoxesFile]) -> None:
    """Scores the decoded inputs of ``outcomes`` (the Cropper's batched scoring: one call per group of
    same-size model inputs); when the model fails, every input of this batch fails with its message. The
    photos' details are released after."""
    try:
        _score(cropper, outcomes, job, given)
    finally:
        for o in outcomes:
            if o.decoded is not None:
                o.decoded.detail = None


@torch.no_grad()
def _score(cropper, outcomes: List[Outcome], job: Job, given: Optional[BoxesFile]) -> None:
    work = []  # (outcome, ok ratio specs, candidates, object boxes)
    for o in outcomes:
        if o.error or o.decoded is None:
            continue
        d = o.decoded
        objects = None
        if given is not None:
            objects = given.lookup(o.entry, d.height, d.width)
            if isinstance(objects, str):
                o.error = objects
                continue
        specs = []
        for r in job.ratios:
            try:
                candidate_crops(d.height, d.width, r.value)
                specs.append(r)
            except ValueError as e:
                o.results[r.text] = f"ratio {r.text}: {e}"
        if specs:
            work.append((o, specs, None, objects))
    if not work:
        return
    try:
        # Found before the candidates: the Cropper adds crops built from the faces (Cropper.crop_ratios).
        if given is None:
            found = cropper._find_objects([o.decoded.pixels for o, *_ in work],
                                          [None if o.decoded.detail is None
                                           else cropper._detail(o.decoded.detail[0], o.decoded.geometry)
                                           for o, *_ in work])
        else:
            found = None
        work = [(o, specs, cropper._candidates(o.decoded.geometry, [r.value for r in specs],
                                               faces=None if found is None else o.decoded.geometry.boxes_to_original(f[1])),
                 objects) for (o, specs, _, objects), f in zip(work, found or [None] * len(work))]
        scores = cropper._score_images([o.decoded.pixels for o, *_ in work], [o.decoded.geometry for o, *_ in work],
                                       [c for _, _, c, _ in work],
                                       None if given is None else [objs for *_, objs in work], found=found)
    except Exception as e:  # the model failed (e.g. out of memory): these inputs fail, the run goes on
        for o, *_ in work:
            o.error = f"model failed on this batch: {type(e).__name__}: {e}".splitlines()[0]
        return
    for (o, specs, cands, _), s in zip(work, scores):
        for r, best in zip(specs, cropper._best_crops(cands, s, [r.value for r in specs], job.top_k)):
            o.results[r.text] = (best.boxes, best.scores)
