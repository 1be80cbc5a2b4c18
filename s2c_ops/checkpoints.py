"""``s2c_ops.checkpoints`` is ``s2c_ops.models.weights`` (the name users import; see API.md)."""
import sys

from .models import weights

sys.modules[__name__] = weights
