"""The bundled demo models (`--network demo`, `--classifier demo`): paths, and the default when none is given."""

from __future__ import annotations

from pathlib import Path

import click

DEMO = "demo"


def models_dir() -> Path:
    """Folder of the bundled demo models (package data)."""
    return Path(__file__).resolve().parent / "models"


def demo_network_path() -> Path:
    """Native-format config of the bundled demo GAN."""
    return models_dir() / "gan" / "network.json"


def demo_classifier_path() -> Path:
    """Model folder (params.json + .keras) of the bundled demo classifier."""
    return models_dir() / "classifier"


def or_demo(ref: str | None, option: str) -> str:
    """ref, or 'demo' with one line on stderr saying so when the option (network|classifier) was left out."""
    if ref is not None:
        return ref
    click.echo(f"Using the bundled demo {option} (--{option} demo); pass --{option} to use your own.", err=True)
    return DEMO
