"""``s2c_ops.proposals`` is ``s2c_ops.cropping.proposals`` (the name users import; see API.md)."""
import sys

from .cropping import proposals

sys.modules[__name__] = proposals
