"""project.py's work: load the network and the target, pick the class, project, write NVIDIA's outputs.

outdir/target.png       the target as the GAN sees it (cropped/resized to the GAN's tile)
outdir/proj.png         the reconstruction (projected ws and noise maps)
outdir/projected_w.npz  the projection (layout: synthhist.explain.projection)
outdir/loss.csv         step,loss (the distance, without the noise regularisation)
outdir/proj.mp4         with save_video: target | reconstruction for every step
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from synthhist.errors import UserError
from synthhist.explain.losses import default_loss, make_distance, psnr, ssim
from synthhist.explain.projection import (Projection, best_class, project, projected_noise, save_projection,
                                          uint8_to_gan)
from synthhist.explain.target import load_target
from synthhist.fileio import atomic_open
from synthhist.gan.classes import resolve_class
from synthhist.images import save_image, to_uint8

log = logging.getLogger("synthhist")


@dataclass
class Result:
    """What one projection produced."""

    projection: Projection
    target: np.ndarray      # uint8 [R, R, 3]
    image: np.ndarray       # uint8 [R, R, 3], the reconstruction
    losses: list[float]
    seconds: float
    psnr: float
    ssim: float


def pick_class(net, class_opt: str | None, dist, classifier: str | None, target: np.ndarray) -> int | None:
    """--class K, or 'auto': the classifier's call on the target when given, else the best-fitting class mean."""
    G = net.G
    if class_opt is None and G.c_dim > 0:
        class_opt = "auto"
    if class_opt != "auto":
        return resolve_class(net, class_opt, "--class")
    if G.c_dim == 0:
        raise UserError("--class auto was given but the network is unconditional")
    if classifier:
        from synthhist.explain.loading import load_bridge

        clf, bridge = load_bridge(net, classifier, None, None)
        pred = np.asarray(clf.predict(bridge.from_uint8(torch.from_numpy(target)[None])))[0]
        k = int(np.argmax(pred))
        if k >= G.c_dim:
            raise UserError(f"the classifier calls output {k}, but the network has {G.c_dim} classes")
        log.info(f"class auto: the classifier calls class {k} ({' '.join(f'{p:.3f}' for p in pred)})")
        return k
    k = best_class(G, dist)
    log.info(f"class auto: class {k} has the nearest mean image")
    return k


def project_tile(net, network_ref: str, outdir: str | Path, *, target: str | None = None,
                 tfrecord: str | None = None, index: int | None = None, class_opt: str | None = None,
                 space: str = "w", steps: int = 1000, loss: str | None = None, seed: int = 0,
                 save_video: bool = False, classifier: str | None = None) -> Result:
    """Project one tile into net.G and write target.png, proj.png, projected_w.npz, loss.csv (+ proj.mp4)."""
    G = net.G
    device = next(G.parameters()).device
    R = int(G.img_resolution)
    tgt8 = load_target(R, net.tile_um, target, tfrecord, index)
    tgt = uint8_to_gan(tgt8, device)
    if loss is None:
        loss = default_loss()
        log.info(f"distance: {loss}" + ("" if loss == "lpips" else " (the optional lpips package is not installed)"))
    dist = make_distance(loss, tgt, net.D)
    k = pick_class(net, class_opt, dist, classifier, tgt8)
    outdir = Path(outdir)
    losses, frames = [], []
    t0 = time.perf_counter()
    for i, d, ws, noise in tqdm(project(G, tgt, dist, k, space=space, steps=steps, seed=seed), total=steps,
                                unit="step", desc="project", disable=None):
        losses.append(d)
        if save_video:
            with torch.no_grad(), projected_noise(G, {n: v.cpu().numpy() for n, v in noise.items()}):
                frames.append(np.concatenate([tgt8, to_uint8(G.synthesis(ws, noise_mode="const"))[0].cpu().numpy()], 1))
        if i % 100 == 0 or i == steps - 1:
            log.info(f"step {i + 1}/{steps}: {loss} {d:.4f}")
    seconds = time.perf_counter() - t0
    p = Projection(ws.cpu().numpy(), -1 if k is None else k, space, network_ref, loss,
                   {n: v.cpu().numpy() for n, v in noise.items()})
    with torch.no_grad(), projected_noise(G, p.noise):
        img = G.synthesis(ws, noise_mode="const")
    img8 = to_uint8(img)[0].cpu().numpy()
    a, b = torch.from_numpy(img8)[None].permute(0, 3, 1, 2), torch.from_numpy(tgt8)[None].permute(0, 3, 1, 2)
    res = Result(p, tgt8, img8, losses, seconds, float(psnr(a, b)[0]), float(ssim(a / 255.0, b / 255.0)[0]))
    save_image(outdir / "target.png", tgt8, "png")
    save_image(outdir / "proj.png", img8, "png")
    save_projection(outdir / "projected_w.npz", p)
    with atomic_open(outdir / "loss.csv", "w") as f:
        f.write("step,loss\n" + "".join(f"{i},{v:.6g}\n" for i, v in enumerate(losses)))
    if save_video:
        from synthhist.explain.video import write_mp4

        write_mp4(outdir / "proj.mp4", np.stack(frames))
    log.info(f"{steps} steps in {seconds:.1f} s ({steps / seconds:.1f} steps/s); PSNR {res.psnr:.2f} dB, "
             f"SSIM {res.ssim:.3f}; written to {outdir}")
    return res
