"""Projection measures (never run in CI): reconstruction of images the demo GAN made itself and of painted
demo tissue tiles, classifier agreement real vs reconstruction, and steps/s at 64 and 128 px.

    PYTHONPATH=. python bench/project.py [--steps 200] [--tiles 4] [--device cpu]
"""

import time

import click
import numpy as np
import torch

from synthhist.demo.tissue import paint_tissue
from synthhist.explain.losses import make_distance, psnr, ssim
from synthhist.explain.projection import project, projected_noise, uint8_to_gan
from synthhist.explain.target import to_gan_tile
from synthhist.gan import Generator, load_network
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8


def run(G, t8, k, steps, device):
    tgt = uint8_to_gan(t8, device)
    t0 = time.perf_counter()
    for _, d, ws, noise in project(G, tgt, make_distance("pixel", tgt), k, steps=steps, n_mean=2000):
        pass
    sec = time.perf_counter() - t0
    with torch.no_grad(), projected_noise(G, {n: v.cpu().numpy() for n, v in noise.items()}):
        img8 = to_uint8(G.synthesis(ws))[0].cpu()
    a, b = img8[None].permute(0, 3, 1, 2), torch.from_numpy(t8)[None].permute(0, 3, 1, 2)
    return ws, img8.numpy(), float(psnr(a, b)), float(ssim(a / 255, b / 255)), steps / sec


@click.command()
@click.option("--steps", default=200)
@click.option("--tiles", default=4)
@click.option("--device", default="cpu")
@click.option("--paper-size", is_flag=True, help="Also time a 512 px generator of the paper's widths (3 steps)")
def main(steps, tiles, device, paper_size):
    from synthhist.classifier import load_classifier
    from synthhist.explain.bridge import Bridge

    net = load_network("demo", device)
    G = net.G
    clf = load_classifier("demo")
    bridge = Bridge.for_classifier(64, net.tile_um, clf)
    for seed, k in ((3, 1), (5, 0)):
        with torch.no_grad():
            w0 = G.mapping(z_from_seeds([seed], G.z_dim, device), onehot(k, 2, 1, device))
            t8 = to_uint8(G.synthesis(w0))[0].cpu().numpy()
        ws, _, p, s, rate = run(G, t8, k, steps, device)
        print(f"generated seed {seed} class {k}: PSNR {p:.2f} dB SSIM {s:.3f} |w - w_true| "
              f"{float((ws[0, 0] - w0[0, 0]).norm()):.2f}; {rate:.1f} steps/s")
    agree = 0
    for i in range(tiles):
        kind = ("gland", "spindle")[i % 2]
        t8 = to_gan_tile(paint_tissue(kind, 192, 192, 100 + i, 6.0), 64, 96.0, 96.0)
        _, r8, p, s, rate = run(G, t8, i % 2, steps, device)
        pr, pp = (np.asarray(clf.predict(bridge.from_uint8(torch.from_numpy(x.copy())[None])))[0] for x in (t8, r8))
        agree += int(pr.argmax() == pp.argmax())
        print(f"demo {kind} tile {i}: PSNR {p:.2f} dB SSIM {s:.3f}; clf real {pr.round(3)} recon {pp.round(3)}")
    print(f"classifier agreement real vs reconstruction: {agree}/{tiles}")
    G128 = Generator(512, 2, 512, 128, 3, mapping_kwargs={"num_layers": 2}, channel_base=1024, channel_max=32).eval()
    G128.requires_grad_(False).to(device)
    t8 = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    print(f"128 px (demo-like widths): {run(G128, t8, 0, 20, device)[4]:.1f} steps/s")
    if paper_size:
        G512 = Generator(512, 2, 512, 512, 3, mapping_kwargs={"num_layers": 8}).eval().requires_grad_(False).to(device)
        t8 = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
        print(f"512 px (paper widths): {run(G512, t8, 0, 3, device)[4]:.2f} steps/s")


if __name__ == "__main__":
    main()
