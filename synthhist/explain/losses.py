"""Distances between generator images and a target for projection: LPIPS (VGG16), pixel (L2 + SSIM), disc.

Every distance takes images [N, 3, R, R] float in the generator's range (nominal -1..1) and returns [N].
- lpips: the learned perceptual distance of Zhang et al. 2018 (VGG16), the reference projector's choice, from
  the optional `lpips` package (pip install lpips; it needs torchvision). Its VGG weights are downloaded once
  into the torch hub cache.
- pixel: mean squared error + (1 - SSIM) (11 px Gaussian window, sigma 1.5, on 0..1 images); no download.
- disc: mean squared difference of the discriminator's block outputs, each divided by the target's mean
  square (needs a network file that holds D); no download.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from synthhist.errors import UserError

LOSSES = ("lpips", "pixel", "disc")
Distance = Callable[[torch.Tensor], torch.Tensor]


def lpips_available() -> bool:
    """True when the optional lpips package (and its torchvision) imports."""
    try:
        import lpips  # noqa: F401
    except Exception:
        return False
    return True


def default_loss() -> str:
    """'lpips' when the package is installed, else 'pixel'."""
    return "lpips" if lpips_available() else "pixel"


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian [size]."""
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM of Wang et al. 2004 per image: a, b [N, C, H, W] in 0..1 -> [N] (valid-region mean)."""
    c = a.shape[1]
    size = min(size, a.shape[-1], a.shape[-2])
    g = gaussian_window(size, sigma).to(a)
    kx, ky = g.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), g.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of uint8-range images [N, ...] (0..255) -> [N]."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def pixel_distance(target: torch.Tensor) -> Distance:
    """MSE (on -1..1) + (1 - SSIM) (on 0..1) to target [1, 3, R, R]."""
    t01 = (target + 1) / 2

    def dist(img: torch.Tensor) -> torch.Tensor:
        mse = (img - target).pow(2).flatten(1).mean(1)
        return mse + 1 - ssim(((img + 1) / 2).clamp(0, 1), t01.expand_as(img))
    return dist


def disc_features(D, img: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of the discriminator's resolution blocks (highest resolution first), all float32."""
    x, feats = None, []
    for r in D.block_resolutions:
        x = getattr(D, f"b{r}")(x, img, torch.float32)
        feats.append(x.float())
    return feats


def disc_distance(D, target: torch.Tensor) -> Distance:
    """Sum over D's blocks of mean((f(img) - f(target))^2) / mean(f(target)^2)."""
    if D is None:
        raise UserError("--loss disc needs the discriminator, but the network file holds no D "
                        "(use a training snapshot, or --loss pixel)")
    with torch.no_grad():
        ref = disc_features(D, target)

    def dist(img: torch.Tensor) -> torch.Tensor:
        return sum((f - r).pow(2).flatten(1).mean(1) / r.pow(2).mean().clamp_min(1e-8)
                   for f, r in zip(disc_features(D, img), ref))
    return dist


def lpips_distance(target: torch.Tensor) -> Distance:
    """LPIPS (VGG16) to target; images larger than 256 px are area-downsampled to 256 first (as the reference)."""
    try:
        import lpips
    except Exception:
        raise UserError("--loss lpips needs the optional package 'lpips' (pip install lpips; it needs a "
                        "torchvision that matches your torch): use --loss pixel or --loss disc without it") from None
    try:
        model = lpips.LPIPS(net="vgg", verbose=False).to(target.device).eval().requires_grad_(False)
    except OSError as e:  # the VGG16 weights are fetched once into the torch hub cache
        raise UserError(f"cannot download the LPIPS VGG16 weights (offline?): {e}; use --loss pixel or disc") from None

    def down(x):
        return F.adaptive_avg_pool2d(x, 256) if x.shape[-1] > 256 else x

    ref = down(target)

    def dist(img: torch.Tensor) -> torch.Tensor:
        return model(down(img), ref.expand(img.shape[0], -1, -1, -1)).flatten()
    return dist


def make_distance(name: str, target: torch.Tensor, D=None) -> Distance:
    """Distance `name` (lpips | pixel | disc) to target [1, 3, R, R] (-1..1)."""
    if name == "pixel":
        return pixel_distance(target)
    if name == "disc":
        return disc_distance(D, target)
    if name == "lpips":
        return lpips_distance(target)
    raise UserError(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")
