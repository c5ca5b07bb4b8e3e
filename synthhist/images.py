"""Image conventions shared by every tool.

The project has ONE conversion of generator output to uint8, the one NVIDIA's generate scripts and
slideflow's generate.py use: ``uint8 = clamp(x * 127.5 + 128, 0, 255)`` truncated, i.e. (x + 1) * 127.5
rounded half-up. (slideflow's class_interpolate used (x + 1) * 127.5 truncated, up to one level darker;
we deliberately use the generate.py convention everywhere, so a blend frame at t=0 equals generate.py.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synthhist.errors import UserError


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output [N, C, H, W] float (nominal -1..1) -> uint8 [N, H, W, C] on the same device."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def crop_width(gan_px: int, gan_um: float, target_um: float) -> int:
    """Pixels of a gan_px tile of gan_um microns that cover target_um microns (slideflow's int() rule)."""
    if not gan_um or not gan_px:
        raise UserError("the GAN's tile size is unknown: pass --gan-um and --gan-px (or use a network "
                        "with training_options.json / metadata)")
    if target_um > gan_um + 1e-9:
        raise UserError(f"the target tile ({target_um:g} um) is larger than the GAN tile ({gan_um:g} um): "
                        "a GAN image cannot be cropped to it")
    return int(target_um / gan_um * gan_px)


MAX_TILE_PX = 4096  # largest target tile accepted (a 100000 px resize would exhaust memory)


def _positive(value, what: str) -> float:
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)) or float(value) <= 0:
        raise UserError(f"{what} must be a positive number, got {value}")
    return float(value)


def gan_tile_size(resolution: int, *, meta_px: int | None, meta_um: float | None, gan_px: int | None = None,
                  gan_um: float | None = None) -> tuple[int, float]:
    """The GAN's tile (px, um): --gan-px/--gan-um when given, else the network's metadata; refused when um unknown."""
    px = int(_positive(gan_px, "--gan-px")) if gan_px is not None else int(meta_px or resolution)
    if gan_um is None and not meta_um:
        raise UserError("the GAN's tile size in microns is unknown: pass --gan-um (and --gan-px) or use a "
                        "network whose metadata / training_options.json has tile_um")
    um = _positive(gan_um if gan_um is not None else meta_um, "--gan-um")
    if px != int(resolution):
        raise UserError(f"--gan-px {px} does not match the generator's output size ({resolution} px)")
    return px, um


@dataclass(frozen=True)
class TileCrop:
    """The one GAN-tile -> target-tile conversion: centre crop gan_um -> target_um microns, resize to target_px."""

    gan_px: int
    gan_um: float
    target_px: int
    target_um: float

    def __post_init__(self):
        _positive(self.gan_um, "--gan-um")
        _positive(self.target_um, "--target-um")
        if isinstance(self.target_px, bool) or not 1 <= int(self.target_px) <= MAX_TILE_PX:
            raise UserError(f"--target-px must be between 1 and {MAX_TILE_PX}, got {self.target_px}")
        crop_width(self.gan_px, self.gan_um, self.target_um)  # validates the geometry

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 [N, gan_px, gan_px, C] -> uint8 [N, target_px, target_px, C]."""
        return centre_crop_resize(img, self.gan_px, self.gan_um, self.target_px, self.target_um)


def tile_crop(resolution: int, *, meta_px: int | None, meta_um: float | None, target_px: int,
              target_um: float | None = None, gan_px: int | None = None, gan_um: float | None = None) -> TileCrop:
    """TileCrop from a generator's resolution, its metadata and the options (--gan-px/-um, --target-px/-um).

    target_um defaults to the GAN's microns (resize only). Every value is checked before anything is written.
    """
    px, um = gan_tile_size(resolution, meta_px=meta_px, meta_um=meta_um, gan_px=gan_px, gan_um=gan_um)
    return TileCrop(px, um, target_px, um if target_um is None else target_um)


def centre_crop_resize(img: torch.Tensor, gan_px: int, gan_um: float, target_px: int,
                       target_um: float) -> torch.Tensor:
    """Centre-crop uint8 NHWC images from gan_um to target_um microns, then resize to target_px.

    Resizing is bicubic with antialiasing (as slideflow's GAN -> classifier path), rounded back to uint8.
    """
    cw = crop_width(gan_px, gan_um, target_um)
    h = img.shape[1]
    if h != gan_px:
        raise UserError(f"image is {h} px but the GAN tile is {gan_px} px")
    off = int(gan_px / 2 - cw / 2)
    img = img[:, off:off + cw, off:off + cw, :]
    if cw == target_px:
        return img.contiguous()
    x = img.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(target_px, target_px), mode="bicubic", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def image_grid(images: np.ndarray, cols: int, *, gap: int = 0, fill: int = 255) -> np.ndarray:
    """uint8 images [N, H, W, C] -> one grid [rows*H + (rows-1)*gap, cols*W + (cols-1)*gap, C], row by row.

    Gaps and the cells past the last image are `fill`.
    """
    n, h, w, c = images.shape
    rows = max(1, -(-n // cols))
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), fill, np.uint8)
    for i, img in enumerate(images):
        y, x = (i // cols) * (h + gap), (i % cols) * (w + gap)
        grid[y:y + h, x:x + w] = img
    return grid


def save_image(path, img: np.ndarray, fmt: str | None = None) -> None:
    """Save an HWC uint8 RGB array as PNG or JPEG (quality 100) atomically."""
    from PIL import Image

    from synthhist.fileio import atomic_open

    fmt = (fmt or str(path).rsplit(".", 1)[-1]).lower()
    pil_fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}[fmt]
    with atomic_open(path, "wb") as f:
        kwargs = {"quality": 100} if pil_fmt == "JPEG" else {}
        Image.fromarray(np.asarray(img)).save(f, format=pil_fmt, **kwargs)
