"""Regions of interest: slideflow/QuPath ROI CSVs and point-in-polygon tests (docs/slideflow.md §2.3)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from synthhist.errors import UserError

log = logging.getLogger("synthhist")


def read_rois(path: str | Path, slide: str) -> list[np.ndarray]:
    """Polygons ([k, 2] float level-0 x, y) of an ROI CSV with columns roi_name, x_base, y_base (any case)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"slide {slide}: ROI file {path} is not a readable CSV ({str(e).splitlines()[0]})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("roi_name", "x_base", "y_base") if c not in cols]
    if missing:
        raise UserError(f"slide {slide}: ROI file {path} lacks column(s) {', '.join(missing)} "
                        f"(has: {', '.join(df.columns)}; need roi_name, x_base, y_base)")
    try:
        xy = np.stack([df[cols["x_base"]].astype(float).astype(int), df[cols["y_base"]].astype(float).astype(int)], 1)
    except ValueError:
        raise UserError(f"slide {slide}: ROI file {path} has non-numeric x_base/y_base values") from None
    polygons = []
    for name, rows in df.groupby(cols["roi_name"], sort=False).indices.items():
        if len(rows) < 3:
            log.warning(f"slide {slide}: ROI '{name}' in {path} has {len(rows)} point(s) (<3), skipped")
            continue
        polygons.append(xy[rows].astype(np.float64))
    return polygons


def points_in_polygons(points: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """[n] bool: whether each point ([n, 2] x, y) lies inside any polygon (even-odd rule)."""
    inside = np.zeros(len(points), dtype=bool)
    px, py = points[:, 0], points[:, 1]
    for poly in polygons:
        hit = np.zeros(len(points), dtype=bool)
        x0, y0 = poly[:, 0], poly[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        for ax, ay, bx, by in zip(x0, y0, x1, y1):
            crosses = (ay > py) != (by > py)
            with np.errstate(divide="ignore", invalid="ignore"):
                xcross = ax + (py - ay) * (bx - ax) / (by - ay)
            hit ^= crosses & (px < xcross)
        inside |= hit
    return inside
