"""Class-conditional StyleGAN2: networks, checkpoint I/O, blending and training."""
from synthhist.gan.checkpoint import GanNetwork, load_network, save_network  # noqa: F401
