"""Small synthetic slides for tests and demos (tests import it as `slide_fixtures`; the painter is synthhist.wsi.synthetic).

QUADRANT slide (3072 x 2048 px at 0.5 um/px, pyramid downsamples 1, 4, 16), in 1024-px blocks:

    x:    0-1024   1024-2048   2048-3072
    y 0:  blank    tissue      blurred
    y 1:  gray     tissue      white

With 64 px / 128 um tiles (256 level-0 px) the grid is 12 x 8 = 96 tiles, 16 per block
(32 for the tissue column).
"""

from __future__ import annotations

from pathlib import Path

from synthhist.wsi.synthetic import write_synthetic_slide

MPP = 0.5
WIDTH, HEIGHT = 3072, 2048
QUADRANTS = [("blank", (0, 0, 1024, 1024)), ("blurred", (2048, 0, 3072, 1024)),
             ("gray", (0, 1024, 1024, 2048)), ("white", (2048, 1024, 3072, 2048))]


def quadrant_slide(path: str | Path, seed: int = 0) -> Path:
    """The QUADRANT slide above at path (a generic-tiff OpenSlide reads with openslide.mpp-x = 0.5)."""
    return write_synthetic_slide(path, WIDTH, HEIGHT, MPP, QUADRANTS, seed=seed)


def tissue_slide(path: str | Path, width: int = 1536, height: int = 1024, mpp: float | None = MPP, seed: int = 0) -> Path:
    """A slide of tissue only (mpp None: no resolution tags, so OpenSlide reports no MPP)."""
    return write_synthetic_slide(path, width, height, mpp, seed=seed)


def write_roi_csv(path: str | Path, polygons: dict[str, list[tuple[float, float]]],
                  header: str = "ROI_Name,X_base,Y_base") -> Path:
    """Write a QuPath/slideflow ROI CSV: one row per vertex (level-0 px), polygons grouped by name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header] + [f"{name},{x},{y}" for name, pts in polygons.items() for x, y in pts]
    path.write_text("\n".join(lines) + "\n")
    return path
