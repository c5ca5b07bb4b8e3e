"""Procedural H&E-like tissue in two classes that differ in morphology only.

'gland': stroma holding glands (a white lumen lined by a ring of epithelial cells: lilac cytoplasm, round
purple nuclei at the base), with scattered stromal cells between them.
'spindle': fascicles of spindle cells (elongated nuclei in lilac cytoplasm) along a slowly turning flow field,
split by white clefts.

Both classes are drawn from the same four components (stroma, cytoplasm, nucleus, white space) in matched
proportions and coloured by the same stain model, so colour and nuclear density do not tell them apart: only
the arrangement does (round lumens ringed by nuclei vs aligned elongated nuclei). Colour comes from optical
density, OD = h * HAEMATOXYLIN + e * EOSIN per component, scaled by a stain strength drawn per slide.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("gland", "spindle")
MPP = 1.5          # microns per pixel of the demo cohort's slides at level 0
NUCLEUS_UM = 3.0   # nuclear radius, microns

STROMA, CYTOPLASM, NUCLEUS, WHITE = 0, 1, 2, 3
# (haematoxylin, eosin) optical density of each component
COMPONENT_OD = np.array([[0.08, 0.55], [0.32, 0.42], [1.15, 0.25], [0.02, 0.03]], np.float32)
HAEMATOXYLIN = np.array([0.65, 0.70, 0.29], np.float32)
EOSIN = np.array([0.05, 0.90, 0.40], np.float32)
GLASS = (244, 242, 244)
_COS, _SIN = np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)), np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))


def _smooth_noise(rng: np.random.RandomState, h: int, w: int, scale: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], [h, w]: random grid upsampled bicubically."""
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC))


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, a: float, b: float, angle: float, fill: int) -> None:
    """Filled ellipse with half-axes a (along `angle`) and b."""
    ca, sa = math.cos(angle), math.sin(angle)
    xs = cx + a * ca * _COS - b * sa * _SIN
    ys = cy + a * sa * _COS + b * ca * _SIN
    draw.polygon(np.stack([xs, ys], 1).ravel().tolist(), fill=fill)


def _stromal_cells(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, h: int, w: int, nucleus_px: float,
                   density: float) -> None:
    """Scattered thin elongated stromal nuclei, randomly oriented."""
    for _ in range(int(density * h * w / nucleus_px ** 2)):
        _ellipse(draw, rng.uniform(0, w), rng.uniform(0, h), nucleus_px * rng.uniform(0.9, 1.4),
                 nucleus_px * 0.35, rng.uniform(0, math.pi), NUCLEUS)


def _draw_glands(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, h: int, w: int, nucleus_px: float) -> None:
    """Glands on a jittered grid: size, crowding and lumen width vary per slide, shape per gland."""
    radius = nucleus_px * rng.uniform(4.5, 8.0)          # mean gland radius of this slide
    spacing = radius * rng.uniform(2.3, 2.9)
    lumen_frac = rng.uniform(0.35, 0.55)
    _stromal_cells(draw, rng, h, w, nucleus_px, 0.012)
    for gy in np.arange(-spacing, h + spacing, spacing):
        for gx in np.arange(-spacing, w + spacing, spacing):
            cx, cy = gx + rng.uniform(-0.3, 0.3) * spacing, gy + rng.uniform(-0.3, 0.3) * spacing
            r = radius * rng.uniform(0.7, 1.3)
            ecc, angle = rng.uniform(1.0, 1.6), rng.uniform(0, math.pi)
            _ellipse(draw, cx, cy, r * ecc, r / ecc, angle, CYTOPLASM)
            lumen = r * lumen_frac * rng.uniform(0.8, 1.2)
            _ellipse(draw, cx, cy, lumen * ecc, lumen / ecc, angle, WHITE)
            ring = r - nucleus_px * 1.1                  # nuclei at the base of the epithelium
            n = max(6, int(2 * math.pi * ring / (nucleus_px * 1.9)))
            for k in range(n):
                t = 2 * math.pi * (k + rng.uniform(-0.15, 0.15)) / n
                ca, sa = math.cos(angle), math.sin(angle)
                ex, ey = ring * ecc * math.cos(t), ring / ecc * math.sin(t)
                x, y = cx + ex * ca - ey * sa, cy + ex * sa + ey * ca
                radial = math.atan2(y - cy, x - cx)
                _ellipse(draw, x, y, nucleus_px * rng.uniform(0.8, 1.0), nucleus_px * rng.uniform(0.55, 0.75),
                         radial, NUCLEUS)


def _draw_spindles(draw: ImageDraw.ImageDraw, rng: np.random.RandomState, h: int, w: int, nucleus_px: float) -> None:
    """Fascicles of spindle cells along a flow field whose scale and waviness vary per slide, split by clefts."""
    flow = _smooth_noise(rng, h, w, int(nucleus_px * rng.uniform(25, 70))) * math.pi * rng.uniform(0.6, 1.2)
    direction = lambda x, y: float(flow[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)])  # noqa: E731
    _stromal_cells(draw, rng, h, w, nucleus_px, 0.012)
    for _ in range(int(h * w / (nucleus_px * 15.0) ** 2)):   # white clefts along the flow
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        _ellipse(draw, x, y, nucleus_px * rng.uniform(3.5, 7), nucleus_px * rng.uniform(1.6, 2.8),
                 direction(x, y), WHITE)
    cells = int(h * w / (nucleus_px * rng.uniform(5.6, 6.4)) ** 2)
    xs, ys = rng.uniform(0, w, cells), rng.uniform(0, h, cells)
    length = rng.uniform(1.8, 2.6)
    for x, y in zip(xs, ys):
        angle = direction(x, y) + rng.normal(0, 0.12)
        _ellipse(draw, x, y, nucleus_px * length * 1.9, nucleus_px * 1.1, angle, CYTOPLASM)
    for x, y in zip(xs, ys):
        angle = direction(x, y) + rng.normal(0, 0.12)
        _ellipse(draw, x, y, nucleus_px * length * rng.uniform(0.85, 1.15), nucleus_px * rng.uniform(0.5, 0.65),
                 angle, NUCLEUS)


def paint_labels(kind: str, height: int, width: int, seed: int, nucleus_px: float = 3.0) -> np.ndarray:
    """Component map (STROMA, CYTOPLASM, NUCLEUS, WHITE) of a field of class `kind`: uint8 [height, width]."""
    if kind not in CLASSES:
        raise ValueError(f"unknown tissue kind {kind!r}; expected one of {CLASSES}")
    rng = np.random.RandomState(seed)
    img = Image.new("L", (width, height), STROMA)
    (_draw_glands if kind == "gland" else _draw_spindles)(ImageDraw.Draw(img), rng, height, width, nucleus_px)
    return np.asarray(img)


def _colour(labels: np.ndarray, strength: np.ndarray, rng: np.random.RandomState, nucleus_px: float) -> np.ndarray:
    """RGB (float 0..255) of a component map at the given (H, E) stain strength, with texture."""
    h, w = labels.shape
    od = COMPONENT_OD[labels] * strength                                    # [h, w, 2]
    rgb = 255 * np.exp(-(od[..., :1] * HAEMATOXYLIN + od[..., 1:] * EOSIN))
    blurred = Image.fromarray(rgb.astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius=nucleus_px * 0.2))
    texture = 1 + 0.12 * _smooth_noise(rng, h, w, max(3, int(2 * nucleus_px)))[..., None]
    shade = 1 + 0.08 * _smooth_noise(rng, h, w, int(nucleus_px * 30))[..., None]
    rgb = 255 * (np.maximum(np.asarray(blurred, np.float32), 1) / 255) ** (texture * shade)  # scales the OD
    return rgb


def _match_channels(rgb: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map each channel of rgb [h, w, 3] monotonically onto the value distribution of target [n, 3]."""
    out = np.empty_like(rgb)
    q = (np.arange(rgb.shape[0] * rgb.shape[1]) + 0.5) / (rgb.shape[0] * rgb.shape[1])
    for c in range(3):
        order = np.argsort(rgb[..., c], axis=None)
        ref = np.sort(target[:, c])
        out[..., c].flat[order] = np.interp(q, (np.arange(len(ref)) + 0.5) / len(ref), ref)
    return out


def paint_tissue(kind: str, height: int, width: int, seed: int, nucleus_px: float = 3.0) -> np.ndarray:
    """Paint an H&E-like field of class `kind` ('gland' or 'spindle'): uint8 [height, width, 3].

    The stain strength is drawn from `seed`. Colour is made uninformative of the class: each channel's value
    distribution is matched to the pooled one of this field and a field of the other class stained alike
    (the pooled target has the same expectation for both classes).
    """
    rng = np.random.RandomState(seed + 104729)
    strength = rng.uniform(0.7, 1.3, 2).astype(np.float32)                  # per-slide H and E strength
    rgb = _colour(paint_labels(kind, height, width, seed, nucleus_px), strength, rng, nucleus_px)
    other = CLASSES[1 - CLASSES.index(kind)]
    side = min(max(height, width), 512)
    ref = _colour(paint_labels(other, side, side, seed + 1, nucleus_px), strength, rng, nucleus_px)
    target = np.concatenate([rgb.reshape(-1, 3)[rng.randint(0, height * width, side * side)], ref.reshape(-1, 3)])
    rgb = _match_channels(rgb, target) + rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


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
