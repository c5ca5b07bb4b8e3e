"""Procedural H&E-like tissue in two classes that differ in morphology.

'gland': pink stroma holding round glands (white lumen, a ring of round purple nuclei in lilac cytoplasm).
'spindle': dense sheets of elongated spindle-shaped nuclei aligned along a slowly turning flow field.
Colours follow haematoxylin (purple nuclei) and eosin (pink stroma) staining.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("gland", "spindle")

STROMA = (232, 168, 196)
LUMEN = (246, 240, 246)
CYTOPLASM = (205, 160, 205)
NUCLEUS = (92, 52, 132)
GLASS = (244, 242, 244)


def _smooth_noise(rng: np.random.RandomState, h: int, w: int, scale: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], [h, w]: random grid upsampled bicubically."""
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC))


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, a: float, b: float, angle: float, fill) -> None:
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    xs = cx + a * np.cos(t) * ca - b * np.sin(t) * sa
    ys = cy + a * np.cos(t) * sa + b * np.sin(t) * ca
    draw.polygon(list(zip(xs.tolist(), ys.tolist())), fill=fill)


def _jitter(rng: np.random.RandomState, colour: tuple[int, int, int], amount: int = 12) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.randint(-amount, amount + 1), 0, 255)) for c in colour)


def _draw_glands(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, h: int, w: int, nucleus_px: float) -> None:
    n_glands = int(h * w / (nucleus_px * 22) ** 2) + 1
    for _ in range(n_glands):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(5, 9) * nucleus_px
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_jitter(rng, CYTOPLASM))
        lumen = r * rng.uniform(0.45, 0.6)
        draw.ellipse([cx - lumen, cy - lumen, cx + lumen, cy + lumen], fill=_jitter(rng, LUMEN, 4))
        ring = (r + lumen) / 2
        n = int(2 * math.pi * ring / (nucleus_px * 2.2))
        for k in range(n):
            a = 2 * math.pi * (k + rng.uniform(-0.2, 0.2)) / n
            nr = nucleus_px * rng.uniform(0.8, 1.1)
            x, y = cx + ring * math.cos(a), cy + ring * math.sin(a)
            draw.ellipse([x - nr, y - nr, x + nr, y + nr], fill=_jitter(rng, NUCLEUS))
    for _ in range(int(h * w / (nucleus_px * 9) ** 2)):  # scattered stromal cells
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        _ellipse(draw, x, y, nucleus_px * 1.2, nucleus_px * 0.4, rng.uniform(0, math.pi), _jitter(rng, NUCLEUS))


def _draw_spindles(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, h: int, w: int, nucleus_px: float) -> None:
    flow = _smooth_noise(rng, h, w, int(nucleus_px * 40)) * math.pi
    n = int(h * w / (nucleus_px * 3.2) ** 2)
    xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
    for x, y in zip(xs, ys):
        angle = float(flow[min(int(y), h - 1), min(int(x), w - 1)]) + rng.normal(0, 0.15)
        a = nucleus_px * rng.uniform(1.8, 2.6)
        b = nucleus_px * rng.uniform(0.35, 0.5)
        _ellipse(draw, x, y, a, b, angle, _jitter(rng, NUCLEUS))


def paint_tissue(kind: str, height: int, width: int, seed: int, nucleus_px: float = 3.0) -> np.ndarray:
    """Paint an H&E-like field of class `kind` ('gland' or 'spindle'): uint8 [height, width, 3]."""
    if kind not in CLASSES:
        raise ValueError(f"unknown tissue kind {kind!r}; expected one of {CLASSES}")
    rng = np.random.RandomState(seed)
    img = Image.new("RGB", (width, height), STROMA)
    draw = ImageDraw.Draw(img)
    (_draw_glands if kind == "gland" else _draw_spindles)(draw, rng, height, width, nucleus_px)
    img = img.filter(ImageFilter.GaussianBlur(radius=nucleus_px * 0.25))
    x = np.asarray(img).astype(np.float32)
    shade = _smooth_noise(rng, height, width, int(nucleus_px * 30))[..., None]
    x = x * (1 + 0.06 * shade) + rng.normal(0, 4, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def paint_slide(kind: str, height: int, width: int, seed: int, nucleus_px: float = 3.0,
                margin: float = 0.12) -> np.ndarray:
    """A whole slide: tissue of one class in an irregular blob on glass, uint8 [height, width, 3]."""
    tissue = paint_tissue(kind, height, width, seed, nucleus_px)
    rng = np.random.RandomState(seed + 7919)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    edge = 1 - margin + 0.12 * _smooth_noise(rng, height, width, max(height, width) // 6)
    inside = (r < edge)[..., None]
    glass = np.clip(np.array(GLASS, np.float32) + rng.normal(0, 2, tissue.shape), 0, 255).astype(np.uint8)
    return np.where(inside, tissue, glass)
