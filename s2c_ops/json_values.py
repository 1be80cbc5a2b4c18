"""Checks of values read from JSON (annotations, journals, ``--boxes`` files): Python's reader gives integers
of any length, and ``Infinity`` and ``NaN`` as floats."""
import math
from typing import Any


def finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool) that a float holds, finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer past a float's range
        return False
