"""The package's weights files, for every model it ships or trains (S2CNet, the geometry prior, ...):
safetensors (no code in weight files), with the model's kind and config in the file's metadata.

A model class takes part with :func:`weights_format`, which names its format tag and config class;
:func:`save_weights` / :func:`load_model` / :func:`load` then read and write it. Nothing here
imports a model module: classes register themselves where they are defined.
"""
import hashlib
import importlib
import json
import os
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Type, TypeVar, Union

import torch
from torch import Tensor, nn

from ..files import write_atomic

PathLike = Union[str, "os.PathLike[str]"]
M = TypeVar("M", bound=nn.Module)
#: The file a run folder (what ``s2c train`` writes) keeps its weights in.
RUN_WEIGHTS = "model.safetensors"


def weights_digest(module: nn.Module) -> str:
    """sha256 of a model's state (names, dtypes, shapes and values): what ``s2c crop`` records and compares
    on ``--resume``, and what tells that the ranks of a training run hold the same weights."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


class CheckpointError(ValueError):
    """A weights file or checkpoint that does not fit the model; the message names the keys."""


class _Format(NamedTuple):
    cls: type
    config: Callable[..., Any]
    description: str


_FORMATS: Dict[str, _Format] = {}

#: The package's own formats and the modules that register them: the model classes load on first use, so a
#: file is read before its class may have been imported.
_PACKAGE_FORMATS = {"s2cnet/1": "s2cnet", "s2cnet-blend/1": "blend", "s2cnet-geometry-prior/1": "prior"}


def weights_format(tag: str, config: Callable[..., Any], description: str) -> Callable[[Type[M]], Type[M]]:
    """Class decorator: instances of the class are saved under the format ``tag``; ``config(**dict)``
    rebuilds the ``model.config`` dataclass the class is constructed from; ``description`` names the kind
    of model in messages (``"S2CNet"``)."""

    def register(cls: Type[M]) -> Type[M]:
        if tag in _FORMATS and _FORMATS[tag].cls is not cls:
            raise ValueError(f"weights format {tag!r} is already taken by {_FORMATS[tag].cls.__name__}")
        _FORMATS[tag] = _Format(cls, config, description)
        cls.weights_format = tag
        return cls

    return register


def preview(keys: List[str], limit: int = 8) -> str:
    """At most ``limit`` keys for a message, with the count when there are more."""
    return ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _problems(expected: Mapping[str, Tuple[int, ...]], given: Mapping[str, Tuple[int, ...]], strict: bool) -> List[str]:
    """The missing, unexpected and mis-shaped keys of ``given`` against the model's ``expected`` shapes."""
    wrong = [f"{k} {tuple(v)} (model: {tuple(expected[k])})" for k, v in given.items()
             if k in expected and tuple(v) != tuple(expected[k])]
    problems = [f"shape mismatch: {preview(wrong)}"] if wrong else []
    if strict:
        missing = [k for k in expected if k not in given]
        unexpected = [k for k in given if k not in expected]
        problems += [f"missing: {preview(missing)}"] if missing else []
        problems += [f"unexpected: {preview(unexpected)}"] if unexpected else []
    return problems


def _does_not_fit(model: nn.Module, what: str, problems: List[str]) -> CheckpointError:
    config = getattr(model, "config", type(model).__name__)
    return CheckpointError(f"{what} does not fit the model ({config}): " + "; ".join(problems))


def load_state(model: nn.Module, state: Mapping[str, Tensor], strict: bool, what: str) -> None:
    """Copies ``state`` into ``model`` (values cast to each parameter's dtype), raising
    :class:`CheckpointError` that names the missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    problems = _problems({k: v.shape for k, v in expected.items()}, {k: v.shape for k, v in state.items()}, strict)
    if problems:
        raise _does_not_fit(model, what, problems)
    with torch.no_grad():
        for key, value in state.items():
            if key in expected:
                expected[key].copy_(value)


def save_weights(model: nn.Module, path: PathLike, *, dtype: Optional[torch.dtype] = None) -> None:
    """Writes ``model``'s state and config to ``path`` atomically. ``dtype`` (e.g. ``torch.float16``)
    stores floating-point tensors in that type (they are cast back to the model's on loading)."""
    tag = getattr(type(model), "weights_format", None)
    if tag is None:
        raise TypeError(f"{type(model).__name__} has no weights format (see s2c_ops.models.weights.weights_format)")
    from safetensors.torch import save_file

    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    metadata = {"format": tag, "config": json.dumps(asdict(model.config))}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def weights_file(path: PathLike) -> str:
    """``path`` itself, or the weights file of a run folder."""
    file = os.path.join(path, RUN_WEIGHTS) if os.path.isdir(path) else os.fspath(path)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"no such weights file ({file})")
    return file


def read_metadata(path: PathLike) -> Dict[str, str]:
    """The metadata of a weights file (``format`` and ``config``); :class:`CheckpointError` when the file
    is not one of this package's."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a safetensors weights file ({e})") from None
    tag = metadata.get("format")
    if tag in _PACKAGE_FORMATS and tag not in _FORMATS:
        importlib.import_module(f"{__package__}.{_PACKAGE_FORMATS[tag]}")
    if tag not in _FORMATS or "config" not in metadata:
        known = ", ".join(sorted(_FORMATS))
        raise CheckpointError(f"{path} is not an s2cnet weights file (format {metadata.get('format')!r}; known: {known})")
    return metadata


def _config_numbers(value: Any) -> List[int]:
    """Every int in a stored config (nested dicts and lists included)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _config_numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _config_numbers(v)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def _build(path: str, map_location: Optional[str]) -> Tuple[nn.Module, _Format]:
    """The model a weights file holds. Nothing is allocated before the file is known to fit: the stored
    config's sizes are bounded by the file's own tensors (a size no tensor has, or a count past the number
    of tensors, cannot describe them), the model is laid out on the meta device and its shapes compared
    with the file's, and only then are its tensors made, from the file's values (no random
    initialisation: loading draws nothing from torch's generators)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    fmt = _FORMATS[metadata["format"]]
    try:
        stored = json.loads(metadata["config"])
        _config_numbers(stored)
    except ValueError as e:
        raise CheckpointError(f"{path}: the stored config is not JSON: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: the stored config is nested deeper than any config: the file is damaged "
                              "or forged") from None
    with safe_open(path, framework="pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    bound = max([len(shapes), *(side for shape in shapes.values() for side in shape)])
    too_large = [n for n in _config_numbers(stored) if n > bound]
    if too_large:
        raise CheckpointError(f"{path}: the stored config asks for size {max(too_large)}, larger than any of the "
                              f"file's {len(shapes)} tensors (largest side {bound}): the file is damaged or forged")
    try:
        config = fmt.config(**stored)
        with torch.device("meta"):
            model = fmt.cls(config)
    except (TypeError, ValueError, RuntimeError) as e:  # RuntimeError: a negative size, on the meta device
        raise CheckpointError(f"{path}: the stored config does not fit {fmt.description}: {e}") from None
    expected = model.state_dict()
    problems = _problems({k: v.shape for k, v in expected.items()}, shapes, strict=True)
    if problems:
        raise _does_not_fit(model, path, problems)
    state = load_file(path, device=str(map_location or "cpu"))
    broken = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if broken is not None:  # every score would be NaN: crops chosen at random, NaN written as scores
        raise CheckpointError(f"{path}: {broken} holds NaN or infinite values (a run that diverged, or a damaged "
                              "file)")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, assign=True)
    return model.eval(), fmt


def load_model(cls: Type[M], path: PathLike, map_location: Optional[str] = "cpu") -> M:
    """A model of class ``cls`` from a weights file (or run folder); :class:`CheckpointError` when the file
    holds another kind of model."""
    file = weights_file(path)
    model, fmt = _build(file, map_location)
    if not isinstance(model, cls):
        raise CheckpointError(f"{file} holds a {fmt.description}, not a {cls.__name__}")
    return model


def load(path: PathLike, map_location: Optional[str] = "cpu") -> nn.Module:
    """Any model saved by this package (``model.save(path)``: an S2CNet, the default model, a geometry prior,
    ...), told apart by the file's metadata. ``path`` may be a run folder holding ``model.safetensors`` (what
    ``s2c train`` writes)."""
    return _build(weights_file(path), map_location)[0]


def describe(model: nn.Module) -> str:
    """The kind of a model this package saves (``"S2CNet"``, ``"geometry prior"``, ...), for messages."""
    tag = getattr(type(model), "weights_format", None)
    return _FORMATS[tag].description if tag in _FORMATS else type(model).__name__
