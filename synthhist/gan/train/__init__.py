"""StyleGAN2 training: ADA augmentation, losses, the loop, options and the run folder."""

from synthhist.gan.train.entry import prepare_gan_project, train_from_experiment

__all__ = ["prepare_gan_project", "train_from_experiment"]
