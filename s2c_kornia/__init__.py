"""S2CNet as a Kornia augmentation (AestheticCrop): see its issue."""
