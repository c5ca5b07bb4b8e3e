"""Convert a reference network pickle to the native format: `python -m synthhist.gan.convert IN.pkl OUTDIR`."""

from __future__ import annotations

from pathlib import Path

import click

from synthhist.cli import run
from synthhist.errors import UserError


def convert_pickle(src: str | Path, outdir: str | Path, ema_only: bool = False, class_names: list[str] | None = None,
                   tile_px: int | None = None, tile_um: float | None = None) -> Path:
    """Load a reference pickle without executing it and save it natively; returns the config path."""
    from synthhist.gan.checkpoint import load_network, save_network

    src = Path(src)
    if src.suffix != ".pkl":
        raise UserError(f"{src} is not a .pkl network pickle")
    net = load_network(src, "cpu", training=not ema_only)
    return save_network(outdir, net.G, class_names or net.class_names, tile_px or net.tile_px, tile_um or net.tile_um,
                        D=net.D, G_train=net.G_train, augment_p=net.augment_p,
                        extra={"converted_from": src.name})


@click.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--ema-only", is_flag=True, help="Keep only G_ema (for generation); default keeps G, D and augment p.")
@click.option("--class-names", default=None, help="Comma-separated class names [default: training_options.json].")
@click.option("--tile-px", type=int, default=None, help="Tile size in pixels [default: training_options.json].")
@click.option("--tile-um", type=float, default=None, help="Tile size in microns [default: training_options.json].")
def main(src, outdir, ema_only, class_names, tile_px, tile_um):
    """Convert the StyleGAN2 pickle SRC (ADA, StyleGAN3 or slideflow) to a native model folder OUTDIR."""
    names = [n.strip() for n in class_names.split(",")] if class_names else None
    config = convert_pickle(src, outdir, ema_only, names, tile_px, tile_um)
    click.echo(f"wrote {config}")


if __name__ == "__main__":
    run(main)
