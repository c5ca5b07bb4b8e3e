"""Synthetic pyramidal slides (tiled TIFF that OpenSlide opens as generic-tiff, with an MPP) for tests and demos.

The image is painted from regions: 'tissue' (saturated pink/purple blocks with fine texture, sharp at
4 um/px), 'blank' (white glass), 'blurred' (saturated but smooth), 'gray' (textured, unsaturated),
'white' (textured near-white). Levels are written as separate TIFF pages (downsample 1, 4, 16 ...)
with the resolution in pixels per centimetre, which OpenSlide turns into openslide.mpp-x.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

REGION_KINDS = ("tissue", "blank", "blurred", "gray", "white")


def _paint(kind: str, h: int, w: int, rng: np.random.Generator, block: int) -> np.ndarray:
    if kind == "blank":
        return np.full((h, w, 3), 245, np.uint8)
    if kind == "blurred":
        t = (np.sin(np.arange(w, dtype=np.float32) / 97)[None] + np.cos(np.arange(h, dtype=np.float32) / 131)[:, None]) / 4 + 0.5
        return np.stack([200 - 40 * t, 90 + 20 * t, 170 - 10 * t], -1).astype(np.uint8)
    bh, bw = -(-h // block), -(-w // block)
    coarse = rng.random((bh, bw))[..., None]
    if kind == "tissue":
        pink, purple = np.array([230, 120, 180]), np.array([110, 40, 150])
        base = pink * coarse + purple * (1 - coarse)
    elif kind == "gray":
        base = np.repeat(80 + 100 * coarse, 3, -1)
    elif kind == "white":
        base = np.repeat(236 + 15 * coarse, 3, -1)
    else:
        raise ValueError(f"unknown region kind '{kind}' (known: {', '.join(REGION_KINDS)})")
    img = np.repeat(np.repeat(base.astype(np.int16), block, 0), block, 1)[:h, :w]
    return np.clip(img + rng.integers(-8, 9, (h, w, 1), dtype=np.int16), 0, 255).astype(np.uint8)


def synthetic_image(width: int, height: int, regions: list[tuple[str, tuple[int, int, int, int]]] = (),
                    base: str = "tissue", seed: int = 0, block: int = 16) -> np.ndarray:
    """uint8 [height, width, 3]: base kind everywhere, then each (kind, (x0, y0, x1, y1)) painted in order."""
    rng = np.random.default_rng(seed)
    img = _paint(base, height, width, rng, block)
    for kind, (x0, y0, x1, y1) in regions:
        img[y0:y1, x0:x1] = _paint(kind, y1 - y0, x1 - x0, rng, block)
    return img


def write_pyramid_tiff(path: str | Path, img: np.ndarray, mpp: float | None, downsamples=(1, 4, 16),
                       tile: int = 256, compression: str | None = None) -> Path:
    """Write img as a tiled pyramidal TIFF (one page per level); mpp None writes no resolution (no MPP)."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as tw:
        for i, ds in enumerate(downsamples):
            h, w = img.shape[0] // ds, img.shape[1] // ds
            level = img if ds == 1 else np.asarray(Image.fromarray(img).resize((w, h), Image.BOX))
            kwargs = {}
            if mpp is not None:
                kwargs = {"resolution": (1e4 / (mpp * ds), 1e4 / (mpp * ds)), "resolutionunit": "CENTIMETER"}
            tw.write(level, tile=(tile, tile), photometric="rgb", subfiletype=0 if i == 0 else 1,
                     compression=compression, **kwargs)
    return path


def write_synthetic_slide(path: str | Path, width: int = 3072, height: int = 2048, mpp: float | None = 0.5,
                          regions: list[tuple[str, tuple[int, int, int, int]]] = (), base: str = "tissue",
                          seed: int = 0, downsamples=(1, 4, 16), compression: str | None = None) -> Path:
    """Paint a synthetic slide (see synthetic_image) and write it as a pyramidal TIFF at path."""
    return write_pyramid_tiff(path, synthetic_image(width, height, regions, base, seed), mpp, downsamples,
                              compression=compression)
