"""The bundled demo models (`--network demo`, `--classifier demo`): names kept for callers of synthhist.refs."""

from __future__ import annotations

from pathlib import Path

from synthhist.refs import DEMO, demo_path, or_demo

__all__ = ["DEMO", "demo_classifier_path", "demo_network_path", "or_demo"]


def demo_network_path() -> Path:
    """Native-format config of the bundled demo GAN."""
    return demo_path("network")


def demo_classifier_path() -> Path:
    """Model folder (params.json + .keras) of the bundled demo classifier."""
    return demo_path("classifier")
