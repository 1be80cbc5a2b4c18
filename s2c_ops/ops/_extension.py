"""Chooses the implementation of the torch.ops.s2c operators when s2c_ops is imported.

The compiled library s2c_ops._C is loaded when it exists, was built against the imported torch
(setup.py's build_ext records that version in _build_info.json beside the _C it builds; a library built
for another torch may crash rather than fail to load, so it is not tried) and loads. Otherwise the pure-PyTorch operators of
fallback.py are registered under the same schemas, and one warning names the cause and the rebuild
command; with S2C_REQUIRE_EXTENSION=1 that is an ImportError instead.
"""
import importlib
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Optional

import torch

from . import _registration, fallback

REQUIRE_ENV = "S2C_REQUIRE_EXTENSION"
_PACKAGE = Path(__file__).resolve().parents[1]


class ExtensionWarning(UserWarning):
    """The compiled s2c operators could not be used; the pure-PyTorch ones stand in."""


def rebuild_command() -> str:
    checkout = _PACKAGE.parent
    if (checkout / "setup.py").exists() and (checkout / "csrc").is_dir():
        return f"pip install --no-build-isolation -e {checkout}"
    return "pip install --force-reinstall --no-deps --no-build-isolation --no-binary s2cnet s2cnet"


def _problem() -> Optional[str]:
    """Why the compiled library cannot be used, or None after loading it."""
    try:
        spec = importlib.util.find_spec("s2c_ops._C")
    except (ImportError, ValueError) as e:
        return f"s2c_ops._C cannot be found ({type(e).__name__}: {e})"
    if spec is None or spec.origin is None:
        return "s2c_ops._C is not built (it needs a C++ compiler and torch at install time)"
    info = Path(spec.origin).with_name("_build_info.json")
    if info.exists():
        try:
            built_for = json.loads(info.read_text()).get("torch")
        except (OSError, ValueError, AttributeError) as e:
            return f"{info} is unreadable ({e})"
        if built_for != torch.__version__:
            return f"s2c_ops._C was built against torch {built_for}, but torch {torch.__version__} is imported"
    try:
        importlib.import_module("s2c_ops._C")
    except (ImportError, OSError) as e:
        return f"s2c_ops._C does not load ({type(e).__name__}: {e})"
    return None


def _load() -> Optional[str]:
    problem = _problem()
    if problem is None:
        _registration.register("s2c")
        return None
    message = (
        f"{problem}; using the pure-PyTorch s2c operators (same results, slower). "
        f"Rebuild against this torch with: {rebuild_command()}"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        raise ImportError(f"{REQUIRE_ENV}=1: {message}")
    warnings.warn(message, ExtensionWarning, stacklevel=2)
    fallback.register("s2c")
    return problem


FALLBACK_REASON = _load()


def implementation() -> str:
    """``"compiled"`` when torch.ops.s2c runs the kernels of s2c_ops._C, ``"fallback"`` when it runs the
    pure-PyTorch ones (``FALLBACK_REASON`` says why)."""
    return "compiled" if FALLBACK_REASON is None else "fallback"
