"""Generate images for a list of seeds, as the reference generate scripts do (docs/stylegan2.md §5.1, §5.2)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from synthhist.device import warn_if_emulated_bf16
from synthhist.errors import UserError
from synthhist.fileio import atomic_open
from synthhist.gan.checkpoint import GanNetwork
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.gan.synthesis import PRECISIONS  # auto = the reference: fp16 in the top blocks on CUDA, else fp32
from synthhist.images import TileCrop, save_image, tile_crop, to_uint8
from synthhist.progress import Progress

NOISE_MODES = ("const", "random", "none")
FORMATS = ("png", "jpg")


def crop_from_options(net: GanNetwork, target_px: int | None, target_um: float | None, gan_px: int | None = None,
                      gan_um: float | None = None, required: bool = False) -> TileCrop | None:
    """The crop/resize of --target-px/--target-um (None without them); GAN size from --gan-* or the metadata."""
    if target_px is None and target_um is None and not required:
        return None
    if target_px is None:
        raise UserError("resizing needs --target-px (the classifier's tile size in pixels)")
    return tile_crop(int(net.G.img_resolution), meta_px=net.tile_px, meta_um=net.tile_um, target_px=target_px,
                     target_um=target_um, gan_px=gan_px, gan_um=gan_um)


def _check_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=outdir).close()
    except OSError as e:
        raise UserError(f"cannot write to output folder {outdir}: {e.strerror}") from None


@torch.inference_mode()
def generate_images(net: GanNetwork, seeds: list[int], outdir: str | Path, class_idx: int | None = None,
                    psi: float = 1.0, noise_mode: str = "const", fmt: str = "png", batch: int = 16,
                    resize: TileCrop | None = None, save_projection: bool = False,
                    precision: str = "auto") -> list[Path]:
    """Write outdir/seed%04d.<fmt> for each seed (and seed%04d.npy of its ws [num_ws, w_dim] if asked)."""
    if noise_mode not in NOISE_MODES:
        raise UserError(f"unknown noise mode {noise_mode!r} (choose from {', '.join(NOISE_MODES)})")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if not math.isfinite(psi):
        raise UserError(f"--trunc must be a finite number, got {psi}")
    if fmt not in FORMATS:
        raise UserError(f"unknown image format {fmt!r} (choose from {', '.join(FORMATS)})")
    G = net.G
    device = next(G.parameters()).device
    warn_if_emulated_bf16(precision, device)
    c = onehot(class_idx, net.c_dim, 1, device)  # validates the class before anything is written
    outdir = Path(outdir)
    _check_outdir(outdir)
    written = []
    with Progress(total=len(seeds), unit="img", desc="generate") as bar:
        for i in range(0, len(seeds), batch):
            chunk = seeds[i:i + batch]
            z = z_from_seeds(chunk, G.z_dim, device)  # [n, z_dim]
            ws = G.mapping(z, c.expand(len(chunk), -1), truncation_psi=psi)  # [n, num_ws, w_dim]
            img = to_uint8(G.synthesis(ws, noise_mode=noise_mode, precision=precision))  # [n, R, R, 3] uint8
            if resize is not None:
                img = resize(img)
            img, ws = img.cpu().numpy(), ws.float().cpu().numpy()
            for seed, im, w in zip(chunk, img, ws):
                path = outdir / f"seed{seed:04d}.{fmt}"
                save_image(path, im, fmt)
                written.append(path)
                if save_projection:
                    with atomic_open(outdir / f"seed{seed:04d}.npy", "wb") as f:
                        np.save(f, w)
            bar.update(len(chunk))
    return written
