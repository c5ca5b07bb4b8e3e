"""Tiny pyramidal TIFF slides that OpenSlide opens (generic-tiff) with an MPP, for download/prepare tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile


def slide_bytes(width: int = 1024, height: int = 768, mpp: float = 0.5, seed: int = 0) -> bytes:
    """A 2-level tiled TIFF (downsamples 1, 4): pink 'tissue' blobs on white glass, resolution in px/cm."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    tissue = np.zeros((height, width), bool)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(100, 250)
        tissue |= (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    img = np.full((height, width, 3), 242, np.uint8)
    img[tissue] = (220, 110, 170)
    img[tissue & ((xx // 8 + yy // 8) % 3 == 0)] = (120, 50, 150)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for i, ds in enumerate((1, 4)):
            level = np.ascontiguousarray(img[::ds, ::ds])
            res = (1e4 / (mpp * ds), 1e4 / (mpp * ds))
            tw.write(level, tile=(256, 256), photometric="rgb", compression="zlib", resolution=res,
                     resolutionunit="CENTIMETER", subfiletype=1 if i else 0)
    return buf.getvalue()


def write_slide(path: str | Path, **kwargs) -> Path:
    """Write slide_bytes(**kwargs) to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(slide_bytes(**kwargs))
    return path


def roi_csv(width: int = 1024, height: int = 768) -> bytes:
    """A ROI CSV (ROI_name, X_base, Y_base) with one rectangle covering the middle of the slide."""
    x0, y0, x1, y1 = width // 8, height // 8, width * 7 // 8, height * 7 // 8
    rows = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return ("ROI_name,X_base,Y_base\n" + "".join(f"ROI_0,{x},{y}\n" for x, y in rows)).encode()
