"""Train the Xception classifier of an experiment: prepare the project (download, tiles), then train."""

import click

from synthhist.cli import command, run
from synthhist.wsi.cli_options import prepare_from_options, project_options


@command()
@project_options
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Train this many epochs (default: hp epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Tiles per batch (default: hp batch_size).")
@click.option("--val-strategy", type=click.Choice(["k-fold", "fixed", "none"]), default=None,
              help="Validation by patient (default: config train_kwargs, else k-fold).")
@click.option("--k-fold", "val_k_fold", type=click.IntRange(min=2), default=None, help="Folds for k-fold (default 3).")
@click.option("--fold", "val_k", type=click.IntRange(min=1), multiple=True, help="Train only these folds (repeatable).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Validation fraction of patients for --val-strategy fixed (default 0.2).")
@click.option("--weights", default=None, help="Base network weights: imagenet (default), none, or a local weights file.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the split and the training (default 0).")
def main(exp, outdir, download, md5, extract_only, workers, **train_options):
    """Prepare the project of a classifier experiment config and train its classifier."""
    experiment, project = prepare_from_options("classifier", exp, outdir, download, md5, extract_only, workers)
    if not extract_only:
        from synthhist.classifier.train import train_from_experiment   # TensorFlow only when training

        train_options["val_k"] = list(train_options["val_k"]) or None
        train_from_experiment(project=project, exp=experiment, **train_options)


if __name__ == "__main__":
    run(main)
