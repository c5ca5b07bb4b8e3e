"""Slide-level quality control masks: Otsu background and blur (docs/slideflow.md §2.4), in numpy + PIL.

A mask is a bool [h, w] image over the whole slide where True = bad (background or blurry);
a grid tile is dropped when more than filter_threshold of its footprint is bad. ROIs do not enter the
mask: they select tiles by their centre (extract.py), so tile kept <=> centre inside an ROI and at most
FILTER_THRESHOLD of its footprint background or blurry.
Decisions versus slideflow 1.3.2 (docs/slideflow.md §2.4, §8.10): the Otsu threshold is computed on the
whole slide's thumbnail, with or without ROIs (1.3.2 blacked out the pixels outside the ROIs; an ROI drawn
inside tissue then leaves no background, and Otsu split the tissue itself); and a slide whose saturation
histogram has no background class (Otsu's lower class is itself saturated) only loses the pixels that
look like glass (saturation <= GLASS_SATURATION), instead of half its tissue.
"""

from __future__ import annotations

import numpy as np
import openslide
from PIL import Image, ImageFilter

from synthhist.errors import UserError

QC_METHODS = ("otsu", "blur", "both")
BLUR_MPP = 4.0            # microns per pixel of the blur thumbnail
BLUR_RADIUS = 3.0         # sigma of the Gaussian applied to |Laplacian|
BLUR_THRESHOLD = 0.02     # smoothed |Laplacian| at or below this = blurry
FILTER_THRESHOLD = 0.6    # tile dropped when its bad fraction exceeds this
MAX_OTSU_SIDE = 8192      # cap on the Otsu image side (single-level slides)
BACKGROUND_MAX_MEAN = 0.15  # Otsu's lower class is background only if its mean saturation is at most this
GLASS_SATURATION = 0.05   # background of a slide without a background class (slideflow's grayspace level)


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation of uint8 [..., 3] RGB as float in 0..1 ((max - min) / max, 0 where max = 0)."""
    rgb = rgb.astype(np.float32)
    mx, mn = rgb.max(-1), rgb.min(-1)
    return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-12), 0.0)


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu threshold t of uint8 values: maximises between-class variance of (<= t) vs (> t)."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * np.arange(256))
    total, mtotal = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0 * total - mtotal * w0) ** 2 / (w0 * w1)
    between[(w0 == 0) | (w1 == 0)] = -1
    return int(np.argmax(between))


def background_threshold(values: np.ndarray) -> int:
    """Saturation (uint8) at or below which a pixel is background: Otsu's threshold of the values, or
    GLASS_SATURATION when Otsu's lower class is not background (all-tissue slide: its mean is saturated)."""
    t = otsu_threshold(values)
    low = np.bincount(values.ravel(), minlength=256)[:t + 1]
    mean = (low * np.arange(t + 1)).sum() / max(low.sum(), 1)
    return t if mean <= BACKGROUND_MAX_MEAN * 255 else int(GLASS_SATURATION * 255)


def otsu_mask(rgb: np.ndarray) -> np.ndarray:
    """Background where the median-filtered (k=7) HSV saturation is <= background_threshold of the image."""
    s = np.round(saturation(rgb) * 255).astype(np.uint8)
    s = np.asarray(Image.fromarray(s).filter(ImageFilter.MedianFilter(7)))
    return s <= background_threshold(s)


def _convolve_separable(img: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    r = len(kernel) // 2
    out = img
    for axis in (0, 1):
        pad = [(r, r) if a == axis else (0, 0) for a in (0, 1)]
        p = np.pad(out, pad, mode=mode)
        n = out.shape[axis]
        out = sum(k * np.take(p, np.arange(i, i + n), axis=axis) for i, k in enumerate(kernel))
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter of a float [h, w] image (truncated at 4 sigma, edge pixels repeated)."""
    r = int(4.0 * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-x ** 2 / (2 * sigma ** 2))
    return _convolve_separable(img.astype(np.float64), k / k.sum(), "edge")


def laplacian(img: np.ndarray) -> np.ndarray:
    """3x3 Laplacian (4 * centre - 4 neighbours) of a float [h, w] image, mirrored edges."""
    p = np.pad(img, 1, mode="symmetric")
    return 4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


def blur_mask(rgb: np.ndarray, sigma: float = BLUR_RADIUS, threshold: float = BLUR_THRESHOLD) -> np.ndarray:
    """Blurry where Gaussian(|Laplacian(gray)|) <= threshold; rgb is a ~4 um/px uint8 thumbnail."""
    gray = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721]) / 255.0
    return gaussian_blur(np.abs(laplacian(gray)), sigma) <= threshold


def slide_qc_mask(osr: openslide.OpenSlide, mpp: float, method: str) -> np.ndarray:
    """bool [h, w] bad-pixel mask of the slide for method 'otsu', 'blur' or 'both'."""
    if method not in QC_METHODS:
        raise UserError(f"unknown qc method '{method}' (choose from {', '.join(QC_METHODS)} or none)")
    width, height = osr.dimensions
    masks = []
    if method in ("otsu", "both"):
        level = osr.level_count - 1
        lw, lh = osr.level_dimensions[level]
        if max(lw, lh) > MAX_OTSU_SIDE:
            rgb = np.asarray(osr.get_thumbnail((MAX_OTSU_SIDE, MAX_OTSU_SIDE)).convert("RGB"))
        else:
            rgb = np.asarray(osr.read_region((0, 0), level, (lw, lh)).convert("RGB"))
        masks.append(otsu_mask(rgb))
    if method in ("blur", "both"):
        size = (max(1, int(mpp * width / BLUR_MPP)), max(1, int(mpp * height / BLUR_MPP)))
        blur = blur_mask(np.asarray(osr.get_thumbnail(size).convert("RGB")))
        if masks:
            h, w = masks[0].shape
            blur = np.asarray(Image.fromarray(blur).resize((w, h), Image.NEAREST), dtype=bool)
        masks.append(blur)
    return np.logical_or.reduce(masks)


def tile_bad_fraction(mask: np.ndarray, slide_width: int, top_lefts: np.ndarray, full_extract_px: int) -> np.ndarray:
    """[n] fraction of bad mask pixels under each tile (level-0 top-left, side full_extract_px)."""
    ds = slide_width / mask.shape[1]
    w = max(1, int(full_extract_px / ds))
    sat = np.pad(np.cumsum(np.cumsum(mask.astype(np.int64), 0), 1), ((1, 0), (1, 0)))  # summed-area table
    x0 = np.minimum((top_lefts[:, 0] / ds).astype(int), mask.shape[1] - 1)
    y0 = np.minimum((top_lefts[:, 1] / ds).astype(int), mask.shape[0] - 1)
    x1, y1 = np.minimum(x0 + w, mask.shape[1]), np.minimum(y0 + w, mask.shape[0])
    total = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    return total / ((x1 - x0) * (y1 - y0))
