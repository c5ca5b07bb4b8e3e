"""Train the Xception classifier of an experiment: prepare the project (download, tiles), then train."""

import click

from synthhist.cli import run
from synthhist.wsi.cli_options import prepare_from_options, project_options, training_entry


@click.command()
@project_options
def main(exp, outdir, download, md5, extract_only, workers, **train_options):
    """Prepare the project of a classifier experiment config and train its classifier."""
    experiment, project = prepare_from_options("classifier", exp, outdir, download, md5, workers)
    if not extract_only:
        training_entry("synthhist.classifier.train", "classifier training")(experiment, project, **train_options)


if __name__ == "__main__":
    run(main)
