"""Benchmark: tile extraction against a plain OpenSlide loop over the same tiles, in the same run.

    python bench/tiling.py [--size 6144] [--slides 4] [--workers 2]

Writes a synthetic zlib-compressed pyramidal slide at 0.5 um/px (tissue, top quarter glass) plus hard-linked
copies, then times over the same grid (no QC, no pixel filters):
  plain   read_region + RGB + LANCZOS resize + Pillow PNG (compress_level=1), tile by tile: what any
          extractor must do, and the baseline of the ratios;
  ours    extract_tiles on one slide, one process (TFRecord written, checksums, shuffled order);
  workers extract_tiles on all slides with --workers processes, against ours with one process.
Prints tiles/s, the ratios and the bytes per tile (plain PNG vs the TFRecord's, framing included). The
one-process ratio is given in wall time and in CPU time (fairer on a shared, loaded machine).
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

NO_FILTERS = dict(grayspace_fraction=1.0, qc=None)


def plain_loop(path: Path, tile_px: int, tile_um: float) -> tuple[int, int]:
    """read_region + RGB + resize + PNG over the extraction grid; return (tiles, PNG bytes)."""
    osr = openslide.OpenSlide(str(path))
    g = tile_geometry(osr.dimensions, osr.level_downsamples, float(osr.properties["openslide.mpp-x"]), tile_px, tile_um)
    n = size = 0
    for x, y in g.top_lefts():
        region = osr.read_region((int(x), int(y)), g.level, (g.extract_px, g.extract_px)).convert("RGB")
        if g.extract_px != tile_px:
            region = region.resize((tile_px, tile_px), Image.LANCZOS)
        buf = io.BytesIO()
        region.save(buf, format="PNG", compress_level=1)
        n, size = n + 1, size + len(buf.getvalue())
    return n, size


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


@click.command()
@click.option("--size", default=6144, help="slide side in level-0 px (0.5 um/px)")
@click.option("--slides", "n_slides", default=4, help="slides for the parallel run")
@click.option("--workers", default=os.cpu_count(), help="processes for the parallel run")
@click.option("--repeat", default=2, help="best of this many timings of each")
def main(size: int, n_slides: int, workers: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        glass = [("blank", (0, 0, size, size // 4))]
        first = write_synthetic_slide(tmp / "slides" / "s0.tif", size, size, 0.5, glass, compression="zlib")
        paths = [first] + [tmp / "slides" / f"s{i}.tif" for i in range(1, n_slides)]
        for p in paths[1:]:
            os.link(first, p)
        print(f"slide {size}x{size} px @ 0.5 um/px, zlib tiles; {os.cpu_count()} CPUs; best of {repeat}")
        for tile_px, tile_um in [(299, 302), (256, 128)]:
            runs = iter(range(10 ** 6))

            def ours(slides, w):
                out = tmp / f"out{tile_px}-{next(runs)}"
                rep = extract_tiles(slides, out, tile_px, tile_um, workers=w, **NO_FILTERS)
                return int(rep.tiles_kept.sum()), sum(p.stat().st_size for p in out.glob("*.tfrecords"))

            (n, png_bytes), t_plain, c_plain = min((timed(lambda: plain_loop(first, tile_px, tile_um))
                                                    for _ in range(repeat)), key=lambda r: r[1])
            (n_ours, tfr_bytes), t_ours, c_ours = min((timed(lambda: ours([first], 1)) for _ in range(repeat)),
                                                      key=lambda r: r[1])
            assert n_ours == n
            (n_par, _), t_par, _ = min((timed(lambda: ours(paths, workers)) for _ in range(repeat)), key=lambda r: r[1])
            _, t_seq, _ = timed(lambda: ours(paths, 1))
            assert n_par == n * n_slides
            print(f"\n{tile_px}px/{tile_um}um: {n} tiles per slide")
            print(f"  plain loop (read, resize, Pillow PNG 1)   {n / t_plain:8.1f} tiles/s   "
                  f"{png_bytes / n / 1e3:6.1f} KB/tile")
            print(f"  extract_tiles, 1 slide, 1 process         {n / t_ours:8.1f} tiles/s   "
                  f"{tfr_bytes / n / 1e3:6.1f} KB/tile   ratio {t_plain / t_ours:.2f}x the plain loop "
                  f"(CPU time: {c_plain / c_ours:.2f}x)")
            print(f"  extract_tiles, {n_slides} slides, 1 process        {n * n_slides / t_seq:8.1f} tiles/s")
            print(f"  extract_tiles, {n_slides} slides, {workers} workers        {n * n_slides / t_par:8.1f} tiles/s"
                  f"   speed-up {t_seq / t_par:.2f}x over 1 process")


if __name__ == "__main__":
    main()
