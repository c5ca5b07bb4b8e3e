"""Image conventions shared by every tool.

The project has ONE conversion of generator output to uint8, the one NVIDIA's generate scripts and
slideflow's generate.py use: ``uint8 = clamp(x * 127.5 + 128, 0, 255)`` truncated, i.e. (x + 1) * 127.5
rounded half-up. (slideflow's class_interpolate used (x + 1) * 127.5 truncated, up to one level darker;
we deliberately use the generate.py convention everywhere, so a blend frame at t=0 equals generate.py.)
"""

from __future__ import annotations

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
        raise UserError(f"the target tile ({target_um} um) is larger than the GAN tile ({gan_um} um): cannot crop")
    return int(target_um / gan_um * gan_px)


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


def save_image(path, img: np.ndarray, fmt: str | None = None) -> None:
    """Save an HWC uint8 RGB array as PNG or JPEG (quality 100) atomically."""
    from PIL import Image

    from synthhist.fileio import atomic_open

    fmt = (fmt or str(path).rsplit(".", 1)[-1]).lower()
    pil_fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}[fmt]
    with atomic_open(path, "wb") as f:
        kwargs = {"quality": 100} if pil_fmt == "JPEG" else {}
        Image.fromarray(np.asarray(img)).save(f, format=pil_fmt, **kwargs)
