"""Train the class-conditional StyleGAN2 of an experiment: prepare the project (download, tiles), then train."""

from pathlib import Path

import click

from synthhist.cli import run
from synthhist.gan.train.options import training_options


@click.command()
@click.option("--exp", "exp", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Experiment config (experiment/<cohort>/<name>_gan.json).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder (default: ./<experiment name>); rerunning continues it.")
@click.option("--download", is_flag=True, help="Download missing slides from the NCI GDC.")
@click.option("--md5", is_flag=True, help="Verify every slide's MD5 against GDC.")
@click.option("--extract-only", is_flag=True, help="Stop after tile extraction (no training).")
@training_options
def main(exp, outdir, download, md5, extract_only, **train_options):
    """Prepare the project of a GAN experiment config and train its GAN (torchrun for several processes)."""
    from synthhist.config import load_experiment
    from synthhist.gan.train import tiles_ready, train_from_experiment
    from synthhist.wsi.prepare import prepare_project

    experiment = load_experiment(exp)
    project = prepare_project(experiment, outdir, download=download, md5=md5,
                              extract=not tiles_ready(experiment, outdir) or extract_only)
    if not extract_only:
        train_from_experiment(project, experiment, **train_options)


if __name__ == "__main__":
    run(main)
