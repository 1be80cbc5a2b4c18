"""``s2c_ops.backbones`` is ``s2c_ops.models.backbones`` (the name users import; see API.md)."""
import sys

from .models import backbones

sys.modules[__name__] = backbones
