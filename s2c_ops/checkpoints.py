"""``s2c_ops.checkpoints`` is ``s2c_ops.models.checkpoints`` (the name users import; see API.md)."""
import sys

from .models import checkpoints

sys.modules[__name__] = checkpoints
