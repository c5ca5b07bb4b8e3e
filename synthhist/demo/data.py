"""Procedural demo cohort: small pyramidal H&E-like slides in two classes, annotations and ROI CSVs."""

from __future__ import annotations

import csv
import io
import math
import tarfile
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from synthhist.demo.tissue import CLASSES, MPP, NUCLEUS_UM, paint_slide
from synthhist.fileio import atomic_open
from synthhist.wsi.synthetic import write_pyramid_tiff


def slide_names(n_per_class: int) -> list[tuple[str, str]]:
    """(slide name, class) pairs: DEMO-01-gland, DEMO-02-spindle, ... alternating classes."""
    return [(f"DEMO-{i + 1:02d}-{CLASSES[i % 2]}", CLASSES[i % 2]) for i in range(2 * n_per_class)]


def roi_polygon(size: int, n: int = 24, inset: float = 0.22) -> list[tuple[int, int]]:
    """A polygon (level-0 px) well inside the painted tissue blob: a circle of radius (1-inset)*size/2."""
    r, c = (1 - inset) * size / 2, size / 2
    return [(int(c + r * math.cos(2 * math.pi * k / n)), int(c + r * math.sin(2 * math.pi * k / n))) for k in range(n)]


def write_demo_data(outdir: str | Path, n_per_class: int = 20, size: int = 1536, mpp: float = MPP,
                    seed: int = 0) -> Path:
    """Write slides/<slide>.tiff, labels.csv (patient, slide, site, tissue) and rois.tar.gz under outdir."""
    outdir = Path(outdir)
    (outdir / "slides").mkdir(parents=True, exist_ok=True)
    names = slide_names(n_per_class)
    nucleus_px = NUCLEUS_UM / mpp
    for i, (name, kind) in enumerate(tqdm(names, desc="demo slides", unit="slide")):
        path = outdir / "slides" / f"{name}.tiff"
        if path.exists():
            continue
        img = paint_slide(kind, size, size, seed=seed * 1000 + i, nucleus_px=nucleus_px)
        tmp = path.with_name(f".{path.name}.tmp")
        write_pyramid_tiff(tmp, img, mpp, downsamples=(1, 4, 16), compression="zlib")
        tmp.replace(path)

    with atomic_open(outdir / "labels.csv", "w") as f:
        w = csv.writer(f)
        w.writerow(["patient", "slide", "site", "tissue"])
        for i, (name, kind) in enumerate(names):
            w.writerow([name[:7], name, f"site{i % 3}", kind])

    with atomic_open(outdir / "rois.tar.gz", "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for name, _ in names:
            rows = "ROI_name,X_base,Y_base\n" + "".join(f"ROI_0,{x},{y}\n" for x, y in roi_polygon(size))
            data = rows.encode()
            info = tarfile.TarInfo(f"{name}.csv")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return outdir


def tile_preview(outdir: str | Path) -> np.ndarray:
    """A strip of the lowest pyramid level of every demo slide (for a quick look)."""
    import openslide

    thumbs = []
    for p in sorted((Path(outdir) / "slides").glob("*.tiff")):
        with openslide.OpenSlide(str(p)) as s:
            thumbs.append(np.asarray(s.get_thumbnail((128, 128)).convert("RGB").resize((128, 128))))
    return np.concatenate(thumbs, axis=1)


@click.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--n-per-class", type=click.IntRange(min=1), default=20, show_default=True, help="Slides per class.")
@click.option("--size", type=click.IntRange(min=256), default=1536, show_default=True, help="Slide width/height (px).")
@click.option("--mpp", type=click.FloatRange(min=0, min_open=True), default=MPP, show_default=True,
              help="Microns per pixel at level 0.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed.")
def main(outdir, n_per_class, size, mpp, seed):
    """Write the procedural demo cohort (slides/, labels.csv, rois.tar.gz) into OUTDIR."""
    out = write_demo_data(outdir, n_per_class=n_per_class, size=size, mpp=mpp, seed=seed)
    click.echo(f"demo data in {out}: {2 * n_per_class} slides, labels.csv, rois.tar.gz")


if __name__ == "__main__":
    from synthhist.cli import run

    run(main)
