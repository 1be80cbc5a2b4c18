"""``s2c_ops.metrics`` is ``s2c_ops.data.metrics`` (the name users import; see API.md)."""
import sys

from .data import metrics

sys.modules[__name__] = metrics
