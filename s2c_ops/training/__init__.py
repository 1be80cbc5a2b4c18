"""Training: S2CNet on GAICD, and the geometry prior on GAICD ratings."""
