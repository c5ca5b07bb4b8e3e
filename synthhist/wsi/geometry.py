"""Tile geometry: microns -> pyramid level, extraction size and the grid of tiles (docs/slideflow.md §2.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthhist.errors import UserError


@dataclass(frozen=True)
class TileGeometry:
    """How tiles of tile_px pixels covering tile_um microns are cut from one slide."""

    tile_px: int
    tile_um: float
    mpp: float
    full_extract_px: int   # tile side in level-0 pixels (= stride: tiles do not overlap)
    level: int             # pyramid level read from
    downsample: float      # that level's downsample
    extract_px: int        # tile side read on that level (resized to tile_px when different)
    xs: np.ndarray         # [nx] level-0 x of tile top-left corners
    ys: np.ndarray         # [ny] level-0 y of tile top-left corners

    def top_lefts(self) -> np.ndarray:
        """[n, 2] level-0 (x, y) of every grid tile, row-major (y outer)."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return np.stack([gx.ravel(), gy.ravel()], 1)

    def centres(self) -> np.ndarray:
        """[n, 2] float level-0 centre of every grid tile, same order as top_lefts()."""
        return self.top_lefts() + self.full_extract_px / 2


def choose_level(downsamples: tuple[float, ...], ds: float) -> int:
    """The level with the largest downsample strictly smaller than ds (level 0 if none)."""
    best = 0
    for i, d in enumerate(downsamples):
        if d < ds and d > downsamples[best]:
            best = i
    return best


def tile_geometry(dimensions: tuple[int, int], downsamples: tuple[float, ...], mpp: float, tile_px: int,
                  tile_um: float) -> TileGeometry:
    """Level, read size and non-overlapping grid of tiles lying fully inside a W x H (level-0) slide."""
    if tile_px <= 0 or tile_um <= 0:
        raise UserError(f"tile_px and tile_um must be positive (got {tile_px}, {tile_um})")
    full = int(tile_um / mpp)
    if full < 1:
        raise UserError(f"tile_um={tile_um} is smaller than one pixel at {mpp} um/px")
    level = choose_level(tuple(downsamples), full / tile_px)
    downsample = float(downsamples[level])
    extract = int(full // downsample)
    width, height = dimensions
    return TileGeometry(tile_px, float(tile_um), mpp, full, level, downsample, extract,
                        np.arange(0, width + 1 - full, full), np.arange(0, height + 1 - full, full))
