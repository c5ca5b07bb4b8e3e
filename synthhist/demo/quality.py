"""How well a demo GAN shows the method: diversity across seeds, seed vs noise, lumens, colour-only separability.

All images are uint8 [n, H, W, 3], as generate.py writes them and the tiler stores them. The figures are those
of experiment/demo/README.md:
- seed_std: pixel standard deviation across images (per pixel and channel, then the mean); on synthetic images
  of one class it is the diversity across seeds, on real tiles the diversity a GAN should reach;
- noise_effect: mean |image(const noise) - image(random noise)| of the same seeds;
- white_fraction: the fraction of near-white pixels (every channel >= WHITE), gland lumens in the demo;
- colour_only_accuracy: held-out accuracy of a logistic regression on per-channel colour histograms.
"""

from __future__ import annotations

import numpy as np
import torch

from PIL import Image

from synthhist.demo.tissue import MPP, NUCLEUS_UM, paint_tissue
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8

WHITE = 0.85


def real_tiles(kind: str, n: int, tile_px: int, tile_um: float, *, mpp: float = MPP, seed: int = 0) -> np.ndarray:
    """n fresh demo tiles of one class, each its own slide (own stain draw), resized as the tiler does.

    Returns uint8 [n, px, px, 3].
    """
    field = round(tile_um / mpp)
    tiles = [np.asarray(Image.fromarray(paint_tissue(kind, field, field, seed + i, nucleus_px=NUCLEUS_UM / mpp))
                        .resize((tile_px, tile_px), Image.LANCZOS)) for i in range(n)]
    return np.stack(tiles)


@torch.inference_mode()
def seed_images(G: torch.nn.Module, class_idx: int, seeds: list[int], noise_mode: str = "const",
                batch: int = 16) -> np.ndarray:
    """The generator's images of one class for these seeds at psi 1, as generate.py makes them: uint8 [n, R, R, 3]."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(seeds), batch):
        chunk = seeds[i:i + batch]
        c = onehot(class_idx, G.c_dim, len(chunk), device)
        out.append(to_uint8(G(z_from_seeds(chunk, G.z_dim, device), c, noise_mode=noise_mode)).cpu().numpy())
    return np.concatenate(out)


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float64 in 0..1."""
    return images.astype(np.float64) / 255


def seed_std(images: np.ndarray) -> float:
    """Mean over pixels and channels of the standard deviation across images (in 0..1 units)."""
    return float(_unit(images).std(axis=0).mean())


def noise_effect(const: np.ndarray, random: np.ndarray) -> float:
    """Mean |const - random| of the same seeds rendered with constant and with random noise (in 0..1 units)."""
    return float(np.abs(_unit(const) - _unit(random)).mean())


def white_fraction(images: np.ndarray) -> float:
    """Fraction of pixels whose every channel is at least WHITE."""
    return float((_unit(images).min(axis=-1) >= WHITE).mean())


def colour_histograms(images: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel colour histograms (fractions), [n, 3 * bins]."""
    idx = images.astype(np.int64) * bins // 256                                # [n, H, W, 3] in 0..bins-1
    n, px = len(images), images.shape[1] * images.shape[2]
    flat = idx.reshape(n, -1, 3) + np.arange(3) * bins                        # channel c -> bins c*bins..
    return np.stack([np.bincount(f.ravel(), minlength=3 * bins) for f in flat]) / px


def colour_only_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                         *, steps: int = 2000, l2: float = 1e-3) -> float:
    """Held-out accuracy of an L2-regularised logistic regression on standardised features (labels 0/1)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.tensor((train_x - mean) / std, dtype=torch.float64)
    y = torch.tensor(train_y, dtype=torch.float64)
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        logits = x @ w[:-1] + w[-1]
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * (w[:-1] ** 2).sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        logits = torch.tensor((test_x - mean) / std) @ w[:-1] + w[-1]
    return float(((logits > 0).numpy() == (test_y > 0.5)).mean())
