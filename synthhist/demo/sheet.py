"""Pictures for a person: a contact sheet of real and synthetic tiles per class, and class-blend strips stacked.

The contact sheet has two labelled panels per class of the GAN, side by side: real tiles, then the GAN's images of
seeds 0..n-1 (as generate.py makes them). Real tiles come from --data (TFRecords or images, as calc_metrics.py
reads them) or, for the demo's classes, are painted as the demo slides are (synthhist.demo.quality.real_tiles: the
GAN's field at the cohort's microns per pixel, resized to its pixels). Every tile is then upscaled smoothly
(explain.video.resize_frames, bicubic) to --tile-px, so that small networks can be seen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np

from synthhist.cli import command
from synthhist.demo import quality
from synthhist.demo.tissue import CLASSES, MPP
from synthhist.errors import UserError
from synthhist.explain.video import resize_frames
from synthhist.images import gan_tile_size, image_grid, save_image

log = logging.getLogger("synthhist")

MARGIN = 12      # px around the sheet
GAP = 4          # px between tiles
PANEL_GAP = 24   # px between panels
CAPTION_PX = 28  # height of a panel's caption
FONT_PX = 18


def _font():
    from PIL import ImageFont

    return ImageFont.load_default(size=FONT_PX)


def caption(text: str, width: int) -> np.ndarray:
    """A white strip [CAPTION_PX, width, 3] with text in dark grey at the left."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, CAPTION_PX), "white")
    ImageDraw.Draw(img).text((0, (CAPTION_PX - FONT_PX) // 2), text, fill=(40, 40, 40), font=_font())
    return np.asarray(img)


def open_reals(net, data: str | Path, *, annotations: str | Path | None = None, outcome: str | None = None):
    """The real tiles of --data (a project's tfrecords/ folder: its subfolder of the GAN's tile size) + class map."""
    from synthhist.metrics.reals import open_data
    from synthhist.metrics.report import class_map

    folder = Path(data).expanduser()
    sub = folder / f"{net.tile_px}px_{net.tile_um:g}um" if net.tile_px and net.tile_um else None
    real = open_data(sub if sub is not None and sub.is_dir() else folder, annotations, outcome)
    cmap = class_map(real, net)
    if not cmap:
        raise UserError(f"--data {folder}: the tiles have no classes (pass --annotations and --outcome, or use "
                        "class subfolders)")
    return real, {j: k for k, j in cmap.items()}  # network class -> data class


def real_tiles(net, cls: int, n: int, *, res: int, field_um: float | None, reals=None, mpp: float) -> np.ndarray:
    """Up to n real tiles of network class cls [m, res, res, 3]: from reals (open_reals) or painted (demo classes)."""
    name = class_names(net)[cls]
    if reals is not None:
        from synthhist.metrics.reals import read_tiles, select

        real, to_data = reals
        idx = select(real, n, to_data[cls]) if cls in to_data else np.zeros(0, np.int64)
        if not len(idx):
            raise UserError(f"--data has no tile of class {cls} ({name})")
        tiles = []
        for t in read_tiles(real, idx):
            s = min(t.shape[:2])
            top, left = (t.shape[0] - s) // 2, (t.shape[1] - s) // 2
            tiles.append(resize_frames(t[None, top:top + s, left:left + s, :3], res)[0])
        return np.stack(tiles)
    if name not in CLASSES:
        raise UserError(f"class {cls} ({name}) is not a demo tissue ({', '.join(CLASSES)}): pass --data with real "
                        "tiles of the network's classes")
    if not field_um:
        raise UserError("the GAN's tile size in microns is unknown: pass --gan-um (or --data with real tiles)")
    return quality.real_tiles(name, n, res, field_um, mpp=mpp, seed=1000 * cls)


def panel(title: str, tiles: np.ndarray, *, n: int, cols: int) -> np.ndarray:
    """A caption over a grid of n cells (tiles first, blank cells after): [CAPTION_PX + H, W, 3]."""
    blank = np.full((n - len(tiles), *tiles.shape[1:]), 255, np.uint8)
    grid = image_grid(np.concatenate([tiles, blank]), cols, gap=GAP)
    return np.concatenate([caption(title, grid.shape[1]), grid])


def stack(parts: list[np.ndarray], axis: int, gap: int) -> np.ndarray:
    """Images of equal height (axis 1) or width (axis 0) joined with white gaps."""
    out = []
    for i, p in enumerate(parts):
        if i:
            shape = list(p.shape)
            shape[axis] = gap
            out.append(np.full(shape, 255, np.uint8))
        out.append(p)
    return np.concatenate(out, axis=axis)


def framed(img: np.ndarray) -> np.ndarray:
    """img with a white MARGIN all round."""
    return np.pad(img, ((MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0)), constant_values=255)


def class_names(net) -> list[str]:
    """The network's class names, or '0', '1', ... when it has none."""
    return list(net.class_names or [str(k) for k in range(net.c_dim)])


def seed_label(seeds: list[int]) -> str:
    """'seeds 0-7' for a run of seeds, else 'seeds 0, 3, 9'."""
    run = len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"seeds {seeds[0]}-{seeds[-1]}" if run else "seeds " + ", ".join(map(str, seeds))


def contact_sheet(net, *, n: int = 8, cols: int = 4, tile_px: int = 160, field_um: float | None = None,
                  reals=None, mpp: float = MPP) -> np.ndarray:
    """One row per class of net: [real tiles | synthetic tiles of seeds 0..n-1], each upscaled to tile_px."""
    res = int(net.G.img_resolution)
    seeds = list(range(n))
    rows = []
    for k, name in enumerate(class_names(net)):
        real = real_tiles(net, k, n, res=res, field_um=field_um, reals=reals, mpp=mpp)
        fake = quality.seed_images(net.G, k, seeds)
        panels = [panel(f"real {name}", resize_frames(real, tile_px), n=n, cols=cols),
                  panel(f"synthetic {name} ({seed_label(seeds)})", resize_frames(fake, tile_px), n=n, cols=cols)]
        rows.append(stack(panels, axis=1, gap=PANEL_GAP))
    return framed(stack(rows, axis=0, gap=PANEL_GAP))


def blend_sheet(net, seeds: list[int], steps: int, *, tile_px: int = 160, start: int = 0, end: int = 1) -> np.ndarray:
    """Class blends start -> end of these seeds, one strip a row, frames upscaled to tile_px, with a caption."""
    from synthhist.explain.interpolate import blend_frames

    device = next(net.G.parameters()).device
    strips = [resize_frames(blend_frames(net.G, s, start, end, steps, device=device), tile_px) for s in seeds]
    grid = image_grid(np.concatenate(strips), steps, gap=GAP)
    names = class_names(net)
    text = (f"class blending {names[start]} (left) -> {names[end]} (right), {steps} steps; "
            f"one row per seed ({seed_label(seeds)})")
    return framed(np.concatenate([caption(text, grid.shape[1]), grid]))


@command()
@click.option("--network", default=None, help="GAN: .pkl, native model folder, hf:owner/repo or demo [default: demo]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Contact sheet PNG.")
@click.option("--blend", default=None, type=click.Path(dir_okay=False),
              help="Also write the class-blend strips of --blend-seeds stacked, as this PNG.")
@click.option("--blend-seeds", default="0-3", show_default=True, help="Seeds of --blend: 0-3, 1,5,9 or a file.")
@click.option("--blend-steps", type=click.IntRange(min=2, max=32), default=8, show_default=True,
              help="Frames per blend strip.")
@click.option("--data", default=None, type=click.Path(exists=True, file_okay=False),
              help="Real tiles of the GAN's field: a folder of TFRecords (a project's tfrecords/ folder: its subfolder "
                   "of the GAN's tile size), or of images in class subfolders [default: painted demo tissue].")
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV of slide labels for --data TFRecords.")
@click.option("--outcome", default=None, help="Column of --annotations holding the class.")
@click.option("--n", "n", type=click.IntRange(min=1, max=64), default=8, show_default=True, help="Tiles per panel.")
@click.option("--cols", type=click.IntRange(min=1, max=16), default=4, show_default=True, help="Tiles per panel row.")
@click.option("--tile-px", type=click.IntRange(min=16, max=1024), default=160, show_default=True,
              help="Size every tile is shown at (smooth bicubic resize).")
@click.option("--gan-um", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Field of a GAN tile in microns, for painted tiles [default: network metadata].")
@click.option("--mpp", type=click.FloatRange(min=0, min_open=True), default=MPP, show_default=True,
              help="Microns per pixel painted tissue is drawn at (the demo cohort's level 0).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
def main(network, out, blend, blend_seeds, blend_steps, data, annotations, outcome, n, cols, tile_px, gan_um, mpp,
         device):
    """Write a contact sheet: real and synthetic tiles of every class of the GAN, side by side (and --blend)."""
    from synthhist.cli import setup_logging
    from synthhist.device import resolve_device
    from synthhist.explain.loading import load_gan, resolve_models
    from synthhist.seeds import parse_seeds

    setup_logging()
    seeds = parse_seeds(blend_seeds)
    network, _ = resolve_models(network, "")
    net, start, end = load_gan(network, 0, 1, resolve_device(device))
    field_um = None
    if data is None:  # painted tiles need the GAN's field
        _, field_um = gan_tile_size(int(net.G.img_resolution), meta_px=net.tile_px, meta_um=net.tile_um,
                                    gan_um=gan_um)
    reals = open_reals(net, data, annotations=annotations, outcome=outcome) if data is not None else None
    sheet = contact_sheet(net, n=n, cols=cols, tile_px=tile_px, field_um=field_um, reals=reals, mpp=mpp)
    save_image(out, sheet, "png")
    source = f"real tiles of {data}" if data is not None else "painted real tiles"
    log.info(f"contact sheet ({sheet.shape[1]} x {sheet.shape[0]} px, {source}) written to {out}")
    if blend is not None:
        img = blend_sheet(net, seeds, blend_steps, tile_px=tile_px, start=start, end=end)
        save_image(blend, img, "png")
        log.info(f"class blends ({img.shape[1]} x {img.shape[0]} px) written to {blend}")


if __name__ == "__main__":
    from synthhist.cli import run

    run(main)
