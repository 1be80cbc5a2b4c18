"""Datasets (GAICD in the official layout) and the cropping metrics."""
from .gaicd import *  # noqa: F401,F403
from .gaicd import __all__ as _gaicd_all

__all__ = list(_gaicd_all)
