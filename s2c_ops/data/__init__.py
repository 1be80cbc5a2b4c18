"""Datasets (GAICD in the official layout, FCDB) and the cropping metrics (:mod:`.metrics`)."""
from .fcdb import FCDB
from .gaicd import *  # noqa: F401,F403
from .gaicd import __all__ as _gaicd_all

__all__ = ["FCDB", *_gaicd_all]
