"""Export a trained demo GAN snapshot and classifier into synthhist/demo/models/ (the bundled demo models)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from synthhist.refs import demo_path
from synthhist.errors import UserError


def bundle_network(snapshot: str | Path, dest: Path | None = None) -> Path:
    """Save only G_ema of a training snapshot (native format) as the demo network; returns its config path."""
    from synthhist.gan import load_network, save_network

    net = load_network(str(snapshot), device="cpu")
    dest = dest or demo_path("network")
    return save_network(dest, net.G, class_names=net.class_names, tile_px=net.tile_px, tile_um=net.tile_um,
                        extra={"source": Path(snapshot).name})


def bundle_classifier(model_dir: str | Path, dest: Path | None = None) -> Path:
    """Copy a trained classifier's params.json and last-epoch .keras model (without the optimizer state) into the
    demo classifier folder."""
    from synthhist.classifier.load import find_model

    model = find_model(Path(model_dir))
    if model.suffix != ".keras":
        raise UserError(f"{model_dir}: expected a .keras model of train_classifier.py")
    dest = dest or demo_path("classifier")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.keras"):
        old.unlink()
    import keras

    shutil.copyfile(model.parent / "params.json", dest / "params.json")
    keras.models.load_model(model, compile=False).save(dest / model.name)  # uncompiled: no optimizer state
    return dest


@click.command()
@click.argument("snapshot", type=click.Path(exists=True, file_okay=False))
@click.argument("classifier", type=click.Path(exists=True, file_okay=False))
def main(snapshot, classifier):
    """Bundle GAN SNAPSHOT (network-snapshot-* folder) and CLASSIFIER (models/NNNNN-... folder) as `demo`."""
    click.echo(f"demo network: {bundle_network(snapshot)}")
    click.echo(f"demo classifier: {bundle_classifier(classifier)}")


if __name__ == "__main__":
    from synthhist.cli import run

    run(main)
