"""Class-conditional StyleGAN2: networks, checkpoint I/O, blending and training."""

from synthhist.gan.discriminator import Discriminator
from synthhist.gan.generator import Generator

__all__ = ["Discriminator", "Generator"]
