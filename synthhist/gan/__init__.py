"""Class-conditional StyleGAN2: networks, checkpoint I/O, blending and training."""
