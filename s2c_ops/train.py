"""``s2c_ops.train`` is ``s2c_ops.training.s2cnet``; ``torchrun -m s2c_ops.train`` runs it."""
import sys

from .training import s2cnet

if __name__ == "__main__":
    sys.exit(s2cnet.main())
sys.modules[__name__] = s2cnet
