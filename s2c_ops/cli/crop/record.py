"""The record of one input and one ratio: the one schema of ``s2c crop``'s output, which the journal writes
and reads back, ``--resume`` compares, the messages and stdout show and the contact sheet draws."""
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

from ...json_values import finite_number

if TYPE_CHECKING:  # the record module is read by the contact sheet, which needs none of the run's pieces
    from .args import Job
    from .journal import Stamp
    from .score import Outcome

#: The schema in words, for ``s2c crop --help``.
HELP = """\
records (JSON Lines, one per input and ratio, in input order):
  {"file": "photos/a.jpg", "status": "ok", "width": 4032, "height": 3024, "ratio": 1.7778,
   "ratio_text": "16:9", "boxes": [[x1, y1, x2, y2], ...], "scores": [...], "outputs": [...],
   "show": null, "model": "...", "proposer": "...",
   "options": {"ratios": ["16:9"], "top_k": 1, "size": null, "weights": "sha256:..."}}
  ratio: width / height, or "free" for --ratio free.
  boxes: the top-k crops, best first, in pixels of the upright full-resolution image (floats, x2/y2
  exclusive); outputs: the files written for them (empty without --out); show: the preview or null;
  options: what the records depend on besides model and proposer (the ratios as written, --top-k,
  --size as [W, H], a digest of the model's weights).
  A failure: {"file": ..., "status": "error", "ratio": ..., "ratio_text": ..., "error": "one line",
  "model": ..., "proposer": ..., "options": ..., and "width"/"height" when known}. A file that
  cannot be read gets an error record for each ratio; a ratio the image cannot hold fails alone.
  Without --json the records go to stdout when stdout is not a terminal (one line per record,
  flushed), and nowhere when it is.
"""

Key = Tuple[str, str]  # (file, ratio text): what a journal keeps one record of


@dataclass(frozen=True)
class Record:
    """One input and one ratio: ``status`` "ok" with ``boxes``, ``scores``, ``outputs`` and ``show``, or
    "error" with ``error``; ``width`` and ``height`` (the upright image's) when known."""

    file: str
    status: str
    ratio: Union[float, str]  # width / height, or "free"
    ratio_text: str
    model: str
    proposer: str
    options: Optional[Dict[str, Any]]  # None in records of releases before --resume
    width: Optional[int] = None
    height: Optional[int] = None
    boxes: List[List[float]] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    show: Optional[str] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key(self) -> Key:
        return self.file, self.ratio_text

    def to_dict(self) -> Dict[str, Any]:
        """The record as JSON writes it (the keys in the order of ``HELP``)."""
        d: Dict[str, Any] = {"file": self.file, "status": self.status}
        if self.ok:
            d.update(width=self.width, height=self.height, ratio=self.ratio, ratio_text=self.ratio_text,
                     boxes=self.boxes, scores=self.scores, outputs=self.outputs, show=self.show)
        else:
            d.update(ratio=self.ratio, ratio_text=self.ratio_text, error=self.error)
            if self.width is not None:
                d.update(width=self.width, height=self.height)
        d.update(model=self.model, proposer=self.proposer, options=self.options)
        return d

    def to_line(self) -> str:
        return json.dumps(self.to_dict()) + "\n"

    @classmethod
    def from_line(cls, line: bytes) -> Optional["Record"]:
        """The record a line holds, or None when it holds none."""
        try:
            d = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return None
        if not _well_formed(d):
            return None
        names = cls.__dataclass_fields__
        values = {k: v for k, v in d.items() if k in names}
        for k in ("boxes", "scores", "outputs"):
            if values.get(k) is None:
                values.pop(k, None)
        values.setdefault("ratio", None)
        values.setdefault("model", None)
        values.setdefault("proposer", None)
        values.setdefault("options", None)
        return cls(**values)


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _list_of(v: Any, kind: Callable[[Any], bool]) -> bool:
    return v is None or isinstance(v, list) and all(kind(x) for x in v)


_OPTIONAL_FIELDS: Dict[str, Callable[[Any], bool]] = {  # field -> its kind when not null
    "ratio": lambda v: finite_number(v) or _text(v), "model": _text, "proposer": _text, "show": _text, "error": _text,
    "options": lambda v: isinstance(v, dict), "width": lambda v: finite_number(v) and float(v).is_integer(),
    "height": lambda v: finite_number(v) and float(v).is_integer(),
    "boxes": lambda v: _list_of(v, lambda b: isinstance(b, list) and len(b) == 4 and all(map(finite_number, b))),
    "scores": lambda v: _list_of(v, finite_number), "outputs": lambda v: _list_of(v, _text),
}


def _well_formed(d: Any) -> bool:
    """Whether a parsed line has the fields of a record, each of its kind (:data:`HELP`): a line that is not
    one is no record (a journal holding it is refused, never read in part)."""
    return (isinstance(d, dict) and _text(d.get("file")) and _text(d.get("ratio_text"))
            and d.get("status") in ("ok", "error")
            and all(d.get(k) is None or ok(d[k]) for k, ok in _OPTIONAL_FIELDS.items()))


def _round(values, digits: int) -> list:
    return [round(float(v), digits) for v in values]


def records_of(o: "Outcome", job: "Job", stamp: "Stamp") -> List[Record]:
    """An input's records, one per ratio of ``job``, in that order."""
    out = []
    d = o.decoded
    common = dict(model=stamp.model, proposer=stamp.proposer, options=stamp.options)
    for r in job.ratios:
        result = o.error or o.entry.error or o.results.get(r.text, "not processed")
        if isinstance(result, tuple):
            boxes, scores = result
            out.append(Record(o.entry.file, "ok", r.value, r.text, width=d.width, height=d.height,
                              boxes=[_round(b, 3) for b in boxes.tolist()], scores=_round(scores.tolist(), 6),
                              outputs=o.outputs.get(r.text, []), show=o.shows.get(r.text), **common))
        else:
            size = dict(width=d.width, height=d.height) if d is not None else {}
            out.append(Record(o.entry.file, "error", r.value, r.text, error=result, **size, **common))
    return out


def lines(records: List[Record]) -> str:
    return "".join(r.to_line() for r in records)
