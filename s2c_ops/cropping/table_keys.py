"""How a :class:`~s2c_ops.cropping.table.CropTable` names its images: one int64 per image.

* ``"index"``: the dataset index, as given (an int >= 0).
* ``"path"``: a file path, normalised (``os.path.normpath``) and hashed (blake2b, 8 bytes).
* ``"fingerprint"``: the image's pixels, hashed on the image's device (:func:`fingerprints`), so a dataset
  needs no change: ``AestheticCrop`` computes it from the batch it is given. A fingerprint that matches must
  also match the image's (height, width), stored beside it.

Collisions. Two different paths or two different images of one size get one key with probability about
``n**2 / 2**64`` over ``n`` images (5e-10 for a million): the second image would then get the first one's
candidate crops, scaled to its size (a poor crop for that sample, nothing worse; no error).
"""
import functools
import hashlib
import numbers
import os
from typing import Sequence, Union

import torch
from torch import Tensor

KEY_KINDS = ("index", "path", "fingerprint")
KeyLike = Union[int, str, "os.PathLike[str]"]

# splitmix64's constants, as signed int64 (torch has no uint64 arithmetic): they mix a position into a weight.
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)


def path_key(path: KeyLike) -> int:
    """The int64 key of a file path (normalised first: ``a/./b.jpg`` and ``a/b.jpg`` are one key)."""
    text = os.path.normpath(os.fspath(path)).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little", signed=True)


def key_tensor(keys: Tensor) -> Tensor:
    """``keys`` given as a tensor, checked: 1-D of an integer kind (``ValueError`` otherwise), as int64 on the CPU."""
    if keys.dim() != 1 or keys.is_floating_point() or keys.is_complex() or keys.dtype == torch.bool:
        raise ValueError(f"keys must be a 1-D integer tensor, got {keys.dtype} of shape {tuple(keys.shape)}")
    return keys.cpu().to(torch.int64)


def explicit_keys(keys: Union[Tensor, Sequence[KeyLike]], kind: str, count: int) -> Tensor:
    """``count`` keys given with a batch (dataset indices or paths) as an int64 CPU tensor; ``ValueError``
    for the wrong number or kind."""
    if isinstance(keys, Tensor):
        keys = key_tensor(keys).tolist()
    elif isinstance(keys, (str, bytes, os.PathLike)) or not isinstance(keys, Sequence):
        raise ValueError(f"keys must be a sequence with one key per image, got {type(keys).__name__}")
    if len(keys) != count:
        raise ValueError(f"got {len(keys)} keys for {count} images: pass one key per image")
    if kind == "index":
        if not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 0 for k in keys):
            raise ValueError(f"this crop table is keyed by dataset index: keys must be ints >= 0, got {list(keys)[:4]}")
        out = [int(k) for k in keys]
    elif kind == "path":
        if not all(isinstance(k, (str, os.PathLike)) for k in keys):
            raise ValueError(f"this crop table is keyed by file path: keys must be paths, got {list(keys)[:4]}")
        out = [path_key(k) for k in keys]
    else:
        raise ValueError("this crop table is keyed by fingerprint: it finds images by their pixels, pass no keys")
    return torch.tensor(out, dtype=torch.int64)


@functools.lru_cache(maxsize=16)
def _weights(numel: int, device: torch.device) -> Tensor:
    """One odd pseudo-random int64 weight per word (splitmix64 of the position), made on ``device``."""
    return _mix(torch.arange(1, numel + 1, dtype=torch.int64, device=device) * _GOLDEN) | 1


def _mix(z: Tensor) -> Tensor:
    """splitmix64's finaliser (a bijection of 64-bit words; ``>>`` made logical by the masks)."""
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * _MIX1
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * _MIX2
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def fingerprints(images: Tensor) -> Tensor:
    """Per image of a (B, C, H, W) batch (uint8, or float in [0, 1]), an int64 hash of its 8-bit pixels,
    computed on the batch's device (returned there): float values are rounded to 8 bits first, so an image
    and its ``/ 255`` float copy share a fingerprint. The bytes are read as 64-bit words, each word mixed
    (:func:`_mix`), and the words summed with odd pseudo-random weights modulo 2**64 (int64 arithmetic
    wraps); a last mixing step. Eight bytes per word: most of the cost is rounding float images to bytes."""
    if images.dim() != 4:
        raise ValueError(f"fingerprints needs a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        values = images.reshape(len(images), -1)
    elif images.is_floating_point():
        values = (images.reshape(len(images), -1) * 255).round_().to(torch.uint8)
    else:
        raise ValueError(f"fingerprints needs uint8 or float images, got {images.dtype}")
    pad = -values.shape[1] % 8
    if pad:
        values = torch.cat([values, values.new_zeros(len(values), pad)], 1)
    words = values.contiguous().view(torch.int64)
    return _mix((_mix(words) * _weights(words.shape[1], images.device)).sum(1))


__all__ = ["KEY_KINDS", "explicit_keys", "fingerprints", "path_key"]
