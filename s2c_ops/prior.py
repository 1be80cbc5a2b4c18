"""``s2c_ops.prior`` is ``s2c_ops.models.prior`` (the name users import; see API.md)."""
import sys

from .models import prior

sys.modules[__name__] = prior
