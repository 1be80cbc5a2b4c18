"""``s2c_ops.train`` is ``s2c_ops.cli.train``; ``torchrun -m s2c_ops.train ...`` runs ``s2c train``."""
import sys

from .cli import train

if __name__ == "__main__":
    sys.exit(train.main())
sys.modules[__name__] = train
