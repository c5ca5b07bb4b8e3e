"""Options shared by train_gan.py and train_classifier.py (project preparation), and their wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from synthhist.config import Experiment, load_experiment
from synthhist.errors import UserError
from synthhist.wsi.prepare import prepare_project
from synthhist.wsi.project import SLIDE_EXTENSIONS, Project


def project_options(f: Callable) -> Callable:
    """Decorate a click command with --exp --outdir --download --md5 --extract-only --workers."""
    options = [
        click.option("--exp", "exp", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Experiment config (experiment/<cohort>/<name>.json)."),
        click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Project folder (default: ./<experiment name>); rerunning continues it."),
        click.option("--download", is_flag=True, help="Download missing slides from the NCI GDC."),
        click.option("--md5", is_flag=True, help="Verify every slide's MD5 against GDC (mismatch: retried once, then quarantined)."),
        click.option("--extract-only", is_flag=True, help="Stop after tile extraction (no training)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Parallel slide downloads and tile-extraction workers (default: 2 downloads, all cores)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def prepare_from_options(kind: str, exp: Path, outdir: Path | None, download: bool, md5: bool, extract_only: bool,
                         workers: int | None) -> tuple[Experiment, Project]:
    """Load the config (checking it is of `kind`) and prepare its project: the one path of both training scripts.

    Tile extraction runs unless the project has TFRecords but no slides (tiles brought from elsewhere) and
    neither --download nor --extract-only asks for it.
    """
    experiment = load_experiment(exp)
    if experiment.kind != kind:
        script = "train_gan.py" if experiment.kind == "gan" else "train_classifier.py"
        raise UserError(f"{exp} is a {experiment.kind} config; use {script}")
    planned = Project(Path(outdir or experiment.name).resolve(), experiment)
    have_tiles = any(planned.tfrecord_dir.glob("*.tfrecords"))
    have_slides = any(p.suffix.lower() in SLIDE_EXTENSIONS for p in planned.slides_dir.glob("**/*"))
    extract = extract_only or download or have_slides or not have_tiles
    return experiment, prepare_project(experiment, outdir, download=download, md5=md5, workers=workers,
                                       extract=extract)
