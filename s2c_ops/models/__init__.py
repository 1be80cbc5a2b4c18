"""Crop scorers: S2CNet (with its backbones, configs, fusion and weights) and the geometry prior."""
from .config import S2CNetConfig
from .s2cnet import S2CNet

__all__ = ["S2CNetConfig", "S2CNet"]
