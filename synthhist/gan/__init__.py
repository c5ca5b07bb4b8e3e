"""Class-conditional StyleGAN2: networks, checkpoint I/O, blending and training."""

from synthhist.gan.checkpoint import GanNetwork, load_network, network_files, save_network
from synthhist.gan.discriminator import Discriminator
from synthhist.gan.generator import Generator

__all__ = ["Discriminator", "GanNetwork", "Generator", "load_network", "network_files", "save_network"]
