"""Train the class-conditional StyleGAN2 of an experiment: prepare the project (download, tiles), then train."""

import click

from synthhist.cli import run
from synthhist.wsi.cli_options import prepare_from_options, project_options, training_entry


@click.command()
@project_options
def main(exp, outdir, download, md5, extract_only, workers, **train_options):
    """Prepare the project of a GAN experiment config and train its GAN."""
    experiment, project = prepare_from_options("gan", exp, outdir, download, md5, workers)
    if not extract_only:
        training_entry("synthhist.gan.train", "GAN training")(experiment, project, **train_options)


if __name__ == "__main__":
    run(main)
