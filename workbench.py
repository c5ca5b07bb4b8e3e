"""Interactive workbench in the browser: seeds, classes, class and layer blending, live classifier predictions."""

from __future__ import annotations

from pathlib import Path

import click

from synthhist.cli import command, run


@command()
@click.option("--network", help="GAN to load at start: .pkl, native network folder or .json, hf:owner/repo, demo "
                                "[default: demo].")
@click.option("--classifier", help="Classifier to load at start: model folder with params.json, hf:owner/repo, demo "
                                   "[default: demo].")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token (generated if not given).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder the page may load networks/classifiers from (repeatable; default: working directory).")
@click.option("--token", default=None, help="Access token required on every request (header X-Workbench-Token or ?token=).")
@click.option("--gan-um", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The GAN's tile size in microns, for networks whose metadata lacks it (needed to feed the classifier).")
@click.option("--real", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of real tiles (TFRecords of our layout or image files) for 'real or synthetic' quizzes.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("teach-results"),
              show_default=True, help="Folder of the quiz answers, one CSV per learner (page: /teach).")
def main(network, classifier, host, port, device, data_dirs, token, gan_um, real, results_dir):
    """Serve the workbench page and print its URL (open it directly, or through an SSH tunnel)."""
    from synthhist.refs import or_demo
    from synthhist.workbench.serve import serve

    network, classifier = or_demo(network, "network"), or_demo(classifier, "classifier")
    serve(host, port, token, list(data_dirs) or [Path.cwd()], device, network, classifier, gan_um,
          results_dir=results_dir, real=real)


if __name__ == "__main__":
    run(main)
