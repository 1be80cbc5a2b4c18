"""``s2c_ops.transforms`` is ``s2c_ops.cropping.transforms`` (the name users import; see API.md)."""
import sys

from .cropping import transforms

sys.modules[__name__] = transforms
