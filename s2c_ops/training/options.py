"""What a training run of ``s2c train`` is given: :class:`TrainOptions`, made once (by the command line from
its options, or by a caller), read by :func:`~.loop.train` and the two datasets' tasks."""
import math
import numbers
import os
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..models.blend import BlendSetting
from ..models.config import ConfigLike

#: The most photos one FCDB step takes: a step holds every photo's graph until it steps (memory grows with it).
MAX_PHOTOS_PER_STEP = 256

#: The options whose defaults differ between the two datasets (GAICD's are the GAIC recipe's).
DEFAULTS = {"gaicd": {"epochs": 80, "lr": 1e-4, "eval_split": "test"},
            "fcdb": {"epochs": 2, "lr": 3e-4, "eval_split": "val"}}


@dataclass(frozen=True)
class TrainOptions:
    """One training run. ``kind`` ``"gaicd"`` (the GAIC recipe) or ``"fcdb"``; :meth:`for_data` tells it
    from the folder and fills the kind's :data:`DEFAULTS`. The options after ``workers`` are FCDB's (see
    :mod:`.fcdb`): ``finetune_epochs`` on pixels after the ``epochs`` on the frozen backbone's cache,
    ``train_split`` ``"fit"`` (the training photos without the validation list) or ``"train"`` (all), the
    blend with the geometry priors at the end (``blend``; ``mirror`` ``None``: with or without the mirror
    image, whichever measures best; ``blend_setting``: that one, not the best of the grid, and ``mirror``,
    when given, must agree with it). ``antialias``:
    the model's input is resized with antialiasing (the face proposer needs it)."""

    data: Path
    out: Path
    kind: str
    epochs: int
    lr: float
    eval_split: str
    config: ConfigLike = "GAICv1"
    backbone_weights: str = "imagenet"
    resume: bool = False
    seed: int = 0
    device: Optional[str] = None
    workers: int = 0
    finetune_epochs: int = 0
    finetune_lr: float = 3e-5
    weight_decay: float = 1e-4
    temperature: float = 0.05
    pair_weight: float = 0.5
    sample: int = 24
    photos_per_step: int = 4
    proposer: str = "default"
    train_split: str = "fit"
    antialias: bool = True
    blend: bool = True
    mirror: Optional[bool] = None
    blend_setting: Optional[BlendSetting] = None

    def __post_init__(self) -> None:
        if self.kind not in DEFAULTS:
            raise ValueError(f"kind must be one of {', '.join(DEFAULTS)}, got {self.kind!r}")
        if self.train_split not in ("fit", "train"):
            raise ValueError(f"--train-split must be fit or train, got {self.train_split!r}")
        for name, least in (("epochs", 0), ("finetune_epochs", 0), ("workers", 0), ("sample", 1),
                            ("photos_per_step", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(self, name)}")
        if self.photos_per_step > MAX_PHOTOS_PER_STEP:
            raise ValueError(f"--photos-per-step must be at most {MAX_PHOTOS_PER_STEP}, got {self.photos_per_step}")
        # NaN passes every comparison, and trained weights full of NaN that evaluate like the centred crop.
        for name, positive in (("lr", True), ("finetune_lr", True), ("temperature", True), ("pair_weight", False),
                               ("weight_decay", False)):
            value = getattr(self, name)
            if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number {'> 0' if positive else '>= 0'}, "
                                 f"got {value}")
        setting = self.blend_setting
        if setting is not None and self.mirror is not None and self.mirror != setting.mirror:
            raise ValueError(f"--blend-setting {setting} (mirror {'on' if setting.mirror else 'off'}) contradicts "
                             f"--mirror {'on' if self.mirror else 'off'}: the setting says it (a last field mirror "
                             "for on)")

    #: The fields that make a run what it is: a ``--resume`` with another value of one would continue a
    #: different run (the epochs, the evaluation, the blend and where it runs may change).
    IDENTITY = ("kind", "config", "backbone_weights", "seed", "lr", "finetune_lr", "weight_decay", "temperature",
                "pair_weight", "sample", "photos_per_step", "proposer", "train_split", "antialias")

    def identity(self) -> dict:
        """:attr:`IDENTITY`'s values and the data folder, resolved, as plain values ``state.pt`` holds (read
        back with ``weights_only=True``): numbers as int or float, paths as text, a configuration by its repr,
        anything else (a backbone state dict) by its type."""
        return {"data": str(Path(self.data).resolve()), **{name: _plain(getattr(self, name)) for name in self.IDENTITY}}

    @classmethod
    def for_data(cls, data: Union[str, Path], out: Union[str, Path], *, epochs: Optional[int] = None,
                 lr: Optional[float] = None, eval_split: Optional[str] = None, **options) -> "TrainOptions":
        """The options of a run on the folder ``data`` (FCDB or GAICD), the kind's defaults where
        ``epochs``, ``lr`` or ``eval_split`` is ``None``; ``options``: the other fields."""
        from ..data.fcdb import is_fcdb

        kind = "fcdb" if is_fcdb(data) else "gaicd"
        given = {"epochs": epochs, "lr": lr, "eval_split": eval_split}
        return cls(Path(data), Path(out), kind, **{k: DEFAULTS[kind][k] if v is None else v for k, v in given.items()},
                   **options)


def _plain(value: Any) -> Union[str, int, float, bool, None]:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value) if is_dataclass(value) else type(value).__name__
