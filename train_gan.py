"""Train the class-conditional StyleGAN2 of an experiment: prepare the project (download, tiles), then train.

One process: `python train_gan.py --exp ...`; several (GPUs or CPU processes): `torchrun --nproc_per_node=N train_gan.py --exp ...`.
"""

import click

from synthhist.cli import command, run
from synthhist.gan.train.options import training_options
from synthhist.wsi.cli_options import prepare_from_options, project_options


@command()
@project_options
@training_options
@click.option("--metrics-classifier", default=None, help="Classifier for --metrics fd_clf (folder, hf:owner/repo, demo)")
@click.option("--metrics-num", type=click.IntRange(min=1), default=None,
              help="Generated images per metric at each snapshot [default: the metric's, e.g. 50k]")
def main(exp, outdir, download, md5, extract_only, workers, metrics_classifier, metrics_num, **train_options):
    """Prepare the project of a GAN experiment config and train its GAN."""
    from synthhist.gan.train import train_from_experiment
    from synthhist.metrics.report import training_metrics

    experiment, project = prepare_from_options("gan", exp, outdir, download, md5, extract_only, workers)
    if not extract_only:
        train_from_experiment(project, experiment, metrics_for=training_metrics(project, experiment, classifier=metrics_classifier, num=metrics_num), workers=workers,
                              **train_options)


if __name__ == "__main__":
    run(main)
