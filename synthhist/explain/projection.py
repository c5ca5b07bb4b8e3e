"""Projection of a real tile into a class-conditional StyleGAN2: find w (or w+) and noise maps that rebuild it.

The optimisation follows NVIDIA's projector (https://github.com/NVlabs/stylegan2-ada-pytorch, projector.py),
made class-conditional:
  start    w_mean(c) = mean of mapping(z, onehot(c)) over N_MEAN z ~ N(0, I); w_std = RMS distance to it.
  params   w [1, 1, w_dim] (space w, repeated over the num_ws inputs) or [1, num_ws, w_dim] (space w+),
           and every synthesis noise map (noise_const buffers, started at the network's own maps, which are
           N(0, 1) draws like the reference's fresh ones: images made with noise mode const, the default of
           every script, are then rebuilt far better); Adam, betas (0.9, 0.999).
  step i   t = i / steps
           lr    = 0.1 * rampdown(t) * min(1, t / 0.05),  rampdown = 0.5 - 0.5 cos(pi min(1, (1 - t) / 0.25))
           w_in  = w + N(0, 1) * w_std * 0.05 * max(0, 1 - t / 0.75)^2        (noise on w, early steps only)
           loss  = distance(G.synthesis(w_in), target) + 1e5 * sum over noise maps and their 2x-pooled
                   pyramids (down to 8 px) of mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2
           after the step every noise map is normalised to mean 0, mean square 1.
The distance is LPIPS (VGG16) as in the reference, or pixel L2 + SSIM, or D features (synthhist.explain.losses).

projected_w.npz (written by save_projection, read by load_projection; every explain script accepts it):
  w        float32 [1, num_ws, w_dim]   the projected ws (all rows equal for space w)
  class    int64 []                     the class the projection started from (-1 for unconditional)
  space    str                          'w' or 'w+'
  network  str                          the network reference it was projected with
  loss     str                          the distance used
  noise/<layer>  float32 [r, r]         the projected noise map of each synthesis layer, e.g. noise/b8.conv0
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from synthhist.errors import UserError
from synthhist.fileio import atomic_open
from synthhist.gan.latent import onehot

SPACES = ("w", "w+")
N_MEAN = 10000
INITIAL_LR, LR_RAMPDOWN, LR_RAMPUP = 0.1, 0.25, 0.05
W_NOISE, W_NOISE_RAMP = 0.05, 0.75
NOISE_REG = 1e5


@dataclass
class Projection:
    """A projected latent: ws [1, num_ws, w_dim], its start class, space, network and noise maps by layer."""

    w: np.ndarray
    class_idx: int
    space: str = "w"
    network: str = ""
    loss: str = ""
    noise: dict[str, np.ndarray] = field(default_factory=dict)


def class_mean_w(G, class_idx: int | None, n: int = N_MEAN, seed: int = 123) -> tuple[torch.Tensor, float]:
    """(w_mean [1, w_dim], w_std) of class_idx from n z mapped with that class's one-hot label."""
    device = G.mapping.w_avg.device if hasattr(G.mapping, "w_avg") else next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32)).to(device)
    with torch.no_grad():
        w = G.mapping(z, onehot(class_idx, G.c_dim, n, device))[:, 0].float()  # [n, w_dim]
    mean = w.mean(0, keepdim=True)
    return mean, float(((w - mean).pow(2).sum() / n).sqrt())


def noise_buffers(G) -> dict[str, torch.Tensor]:
    """The synthesis noise maps {layer name: noise_const [r, r]} (e.g. 'b8.conv0')."""
    return {name[:-len(".noise_const")]: buf for name, buf in G.synthesis.named_buffers() if name.endswith("noise_const")}


@contextlib.contextmanager
def projected_noise(G, noise: dict[str, np.ndarray]) -> Iterator[None]:
    """Within the block G renders (noise_mode 'const') with the projected noise maps; restored afterwards."""
    bufs = noise_buffers(G)
    saved = {k: bufs[k].clone() for k in noise if k in bufs}
    try:
        for k in saved:
            bufs[k].copy_(torch.from_numpy(noise[k]))
        yield
    finally:
        for k, v in saved.items():
            bufs[k].copy_(v)


def noise_regularisation(bufs: list[torch.Tensor]) -> torch.Tensor:
    """Squared spatial autocorrelation of every noise map and its 2x-pooled pyramid down to 8 px."""
    reg = 0.0
    for v in bufs:
        x = v[None, None]  # [1, 1, r, r]
        while True:
            reg = reg + (x * x.roll(1, dims=3)).mean()**2 + (x * x.roll(1, dims=2)).mean()**2
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return reg


def learning_rate(t: float) -> float:
    """Reference schedule: cosine ramp-down over the last 25 % of steps, linear ramp-up over the first 5 %."""
    ramp = min(1.0, (1 - t) / LR_RAMPDOWN)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return INITIAL_LR * ramp * min(1.0, t / LR_RAMPUP)


def uint8_to_gan(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in -1..1 (the inverse of synthhist.images.to_uint8)."""
    return torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1


def project(G, target: torch.Tensor, distance: Callable[[torch.Tensor], torch.Tensor], class_idx: int | None,
            *, space: str = "w", steps: int = 1000, seed: int = 0, n_mean: int = N_MEAN
            ) -> Iterator[tuple[int, float, torch.Tensor, dict[str, torch.Tensor]]]:
    """Optimise w (or w+) and the noise maps toward target [1, 3, R, R]; yields (step, loss, ws, noise) per step.

    G is not changed (a copy is optimised). ws [1, num_ws, w_dim] and noise {layer: [r, r]} are detached.
    """
    if space not in SPACES:
        raise UserError(f"unknown latent space {space!r} (choose w or w+)")
    if steps < 1:
        raise UserError(f"--steps must be at least 1 (got {steps})")
    G = copy.deepcopy(G).eval().requires_grad_(False)
    w_mean, w_std = class_mean_w(G, class_idx, n_mean)
    torch.manual_seed(seed)
    n_ws = G.num_ws if space == "w+" else 1
    w = w_mean[:, None].repeat(1, n_ws, 1).detach().requires_grad_(True)  # [1, n_ws, w_dim]
    bufs = noise_buffers(G)
    for b in bufs.values():  # start from G's own noise maps (N(0, 1) draws, like the reference's fresh randn)
        b.requires_grad_(True)
    opt = torch.optim.Adam([w, *bufs.values()], betas=(0.9, 0.999), lr=INITIAL_LR)
    for i in range(steps):
        t = i / steps
        for g in opt.param_groups:
            g["lr"] = learning_rate(t)
        w_noise = torch.randn_like(w) * w_std * W_NOISE * max(0.0, 1 - t / W_NOISE_RAMP)**2
        img = G.synthesis((w + w_noise).expand(1, G.num_ws, -1), noise_mode="const")
        dist = distance(img).sum()
        loss = dist + NOISE_REG * noise_regularisation(list(bufs.values()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for b in bufs.values():
                b -= b.mean()
                b *= b.square().mean().rsqrt()
        yield i, dist.item(), w.detach().expand(1, G.num_ws, -1).clone(), {k: b.detach().clone() for k, b in bufs.items()}


@torch.no_grad()
def best_class(G, distance: Callable[[torch.Tensor], torch.Tensor], n_mean: int = N_MEAN) -> int:
    """The class whose mean-w image is nearest the target under `distance`."""
    if G.c_dim == 0:
        raise UserError("--class auto needs a class-conditional network")
    d = [float(distance(G.synthesis(class_mean_w(G, k, n_mean)[0][:, None].expand(1, G.num_ws, -1),
                                    noise_mode="const")).sum()) for k in range(G.c_dim)]
    return int(np.argmin(d))


def check_class(G, class_idx: int | None) -> None:
    """UserError for a class out of range, a class on an unconditional network, or none on a conditional one."""
    onehot(class_idx, G.c_dim)


def save_projection(path: str | Path, p: Projection) -> None:
    """Write projected_w.npz (layout in the module docstring) atomically."""
    arrays = {"w": p.w.astype(np.float32), "class": np.int64(p.class_idx), "space": np.str_(p.space),
              "network": np.str_(p.network), "loss": np.str_(p.loss)}
    arrays.update({f"noise/{k}": v.astype(np.float32) for k, v in p.noise.items()})
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def load_projection(path: str | Path, G=None) -> Projection:
    """Read projected_w.npz (no pickles); when G is given, check that the ws and noise maps fit it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"projection not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            p = Projection(np.asarray(z["w"], np.float32), int(z["class"]) if "class" in z else -1,
                           str(z["space"]) if "space" in z else "w", str(z["network"]) if "network" in z else "",
                           str(z["loss"]) if "loss" in z else "",
                           {k[len("noise/"):]: np.asarray(z[k], np.float32) for k in z.files if k.startswith("noise/")})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a projection file (projected_w.npz from project.py): {e}") from None
    if p.w.ndim == 2:  # [num_ws, w_dim], as generate.py --save-projection writes
        p.w = p.w[None]
    if p.w.ndim != 3 or p.w.shape[0] != 1:
        raise UserError(f"{path}: w has shape {list(p.w.shape)}, expected [1, num_ws, w_dim]")
    if G is not None:
        if tuple(p.w.shape[1:]) != (G.num_ws, G.w_dim):
            raise UserError(f"{path}: w is {list(p.w.shape)} but the network takes [1, {G.num_ws}, {G.w_dim}] "
                            "(projected with another network?)")
        bufs = noise_buffers(G)
        for k, v in p.noise.items():
            if k not in bufs or tuple(v.shape) != tuple(bufs[k].shape):
                raise UserError(f"{path}: noise map {k} {list(v.shape)} does not fit the network")
    return p
