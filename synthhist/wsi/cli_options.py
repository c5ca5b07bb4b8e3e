"""Options shared by train_gan.py and train_classifier.py (project preparation), and their wiring."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import click

from synthhist.config import Experiment, load_experiment
from synthhist.errors import UserError
from synthhist.wsi.prepare import prepare_project
from synthhist.wsi.project import Project


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


def prepare_from_options(kind: str, exp: Path, outdir: Path | None, download: bool, md5: bool,
                         workers: int | None) -> tuple[Experiment, Project]:
    """Load the config (checking it is of `kind`) and prepare its project."""
    experiment = load_experiment(exp)
    if experiment.kind != kind:
        script = "train_gan.py" if experiment.kind == "gan" else "train_classifier.py"
        raise UserError(f"{exp} is a {experiment.kind} config; use {script}")
    return experiment, prepare_project(experiment, outdir, download=download, md5=md5, workers=workers)


def training_entry(module: str, what: str) -> Callable[..., Any]:
    """`module.train_from_experiment`, imported lazily; UserError when that training is not available."""
    try:
        return importlib.import_module(module).train_from_experiment
    except (ModuleNotFoundError, AttributeError) as e:
        if isinstance(e, ModuleNotFoundError) and e.name and not module.startswith(e.name):
            raise                      # a dependency of the trainer is missing: a real error
        raise UserError(f"{what} is not available yet") from None
