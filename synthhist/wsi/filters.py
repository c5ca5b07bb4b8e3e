"""Pixel-level tile filters: whitespace and grayspace (docs/slideflow.md §2.5)."""

from __future__ import annotations

import numpy as np

from synthhist.wsi.qc import saturation


def whitespace_fraction(tile: np.ndarray, threshold: float = 230) -> float:
    """Fraction of pixels of a uint8 HWC tile whose RGB mean exceeds threshold."""
    return float((tile.mean(-1) > threshold).mean())


def grayspace_fraction(tile: np.ndarray, threshold: float = 0.05) -> float:
    """Fraction of pixels of a uint8 HWC tile whose HSV saturation (0..1) is below threshold."""
    return float((saturation(tile) < threshold).mean())
