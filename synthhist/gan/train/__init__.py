"""StyleGAN2 training: ADA augmentation, losses, the loop, options and the run folder."""

from synthhist.gan.train.entry import train_from_experiment

__all__ = ["train_from_experiment"]
