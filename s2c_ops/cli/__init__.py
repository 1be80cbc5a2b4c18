"""The ``s2c`` command line (also ``python -m s2c_ops.cli``)."""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
