"""Benchmark: tile extraction throughput (tiles/s) against a plain OpenSlide read_region loop, same run.

    python bench/tiling.py [--size 6144] [--slides 4] [--workers 2]

Writes a synthetic zlib-compressed pyramidal slide (tissue, top quarter glass) (plus hard-linked copies), then times, over the same
grid: (a) a bare read_region loop, (b) read_region + RGB + PNG encode (the work any extractor must do),
(c) extract_tiles on one slide, (d) extract_tiles on all slides with --workers processes, against
(a) run over all slides one after the other.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

import click
import openslide
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthhist.wsi.extract import extract_tiles  # noqa: E402
from synthhist.wsi.geometry import tile_geometry  # noqa: E402
from synthhist.wsi.synthetic import write_synthetic_slide  # noqa: E402


def plain_loop(path: Path, tile_px: int, tile_um: float, encode: bool) -> int:
    """read_region over the extraction grid (optionally + resize + PNG); return the tile count."""
    osr = openslide.OpenSlide(str(path))
    g = tile_geometry(osr.dimensions, osr.level_downsamples, float(osr.properties["openslide.mpp-x"]), tile_px, tile_um)
    n = 0
    for x, y in g.top_lefts():
        region = osr.read_region((int(x), int(y)), g.level, (g.extract_px, g.extract_px))
        if encode:
            region = region.convert("RGB")
            if g.extract_px != tile_px:
                region = region.resize((tile_px, tile_px), Image.LANCZOS)
            region.save(io.BytesIO(), format="PNG", compress_level=1)
        n += 1
    return n


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@click.command()
@click.option("--size", default=6144, help="slide side in level-0 px (0.5 um/px)")
@click.option("--slides", "n_slides", default=4, help="slides for the parallel run")
@click.option("--workers", default=os.cpu_count(), help="processes for the parallel run")
def main(size: int, n_slides: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        glass = [("blank", (0, 0, size, size // 4))]  # a strip of background, so Otsu has two classes
        first = write_synthetic_slide(tmp / "slides" / "s0.tif", size, size, 0.5, glass, compression="zlib")
        paths = [first] + [tmp / "slides" / f"s{i}.tif" for i in range(1, n_slides)]
        for p in paths[1:]:
            os.link(first, p)
        print(f"slide {size}x{size} px @ 0.5 um/px, zlib tiles, {os.cpu_count()} CPUs")
        for tile_px, tile_um in [(299, 302), (256, 128)]:
            opts = dict(grayspace_fraction=1.0, qc=None)
            n, t_read = timed(lambda: plain_loop(first, tile_px, tile_um, encode=False))
            _, t_enc = timed(lambda: plain_loop(first, tile_px, tile_um, encode=True))
            rep, t_ours = timed(lambda: extract_tiles([first], tmp / f"one{tile_px}", tile_px, tile_um, workers=1, **opts))
            assert rep.tiles_kept.sum() == n
            _, t_base_all = timed(lambda: sum(plain_loop(p, tile_px, tile_um, encode=False) for p in paths))
            rep, t_par = timed(lambda: extract_tiles(paths, tmp / f"all{tile_px}", tile_px, tile_um, workers=workers, **opts))
            assert rep.tiles_kept.sum() == n * n_slides
            _, t_qc = timed(lambda: extract_tiles([first], tmp / f"qc{tile_px}", tile_px, tile_um, workers=1,
                                                  qc="both", grayspace_fraction=0.6))
            print(f"\n{tile_px}px/{tile_um}um: {n} tiles per slide")
            print(f"  plain read_region loop, 1 slide        {n / t_read:8.1f} tiles/s")
            print(f"  read_region + resize + PNG, 1 slide    {n / t_enc:8.1f} tiles/s")
            print(f"  extract_tiles, 1 slide, 1 process      {n / t_ours:8.1f} tiles/s")
            print(f"  extract_tiles + qc both + grayspace    {n / t_qc:8.1f} tiles/s")
            print(f"  plain read_region loop, {n_slides} slides       {n * n_slides / t_base_all:8.1f} tiles/s")
            print(f"  extract_tiles, {n_slides} slides, {workers} workers    {n * n_slides / t_par:8.1f} tiles/s")


if __name__ == "__main__":
    main()
