"""``s2c_ops.candidates`` is ``s2c_ops.cropping.candidates`` (the name users import; see API.md)."""
import sys

from .cropping import candidates

sys.modules[__name__] = candidates
