"""Network loading time at the paper's size (512 px, c_dim 2): reference pickle (no-exec reader) vs native.

Usage: python bench/netio_load.py [--repeats 3]
Writes a random paper-config G_ema/G/D as a reference-format snapshot pickle and in the native format
(G_ema only and with G+D) into a temp folder, then times load_network for G_ema (generation) and training=True.
The baseline in the same run is torch.load(weights_only=True) of a plain state-dict file of the same G_ema.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gan_fixtures import RefPickler, _Builder  # noqa: E402  (test helper that writes reference pickles)
from synthhist.gan import Discriminator, Generator, load_network, save_network  # noqa: E402

PAPER = dict(z_dim=512, c_dim=2, w_dim=512, img_resolution=512, img_channels=3, mapping_kwargs=dict(num_layers=8),
             channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
PAPER_D = dict(c_dim=2, img_resolution=512, img_channels=3, channel_base=32768, channel_max=512, num_fp16_res=4,
               conv_clamp=256, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@click.command()
@click.option("--repeats", type=int, default=3, show_default=True)
def main(repeats):
    """Print load times (best of --repeats) and file sizes."""
    torch.manual_seed(0)
    G, D = Generator(**PAPER).eval(), Discriminator(**PAPER_D).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        b = _Builder("nv3", "", "numpy._core", "update_emas\n", 6)
        snap = {"G": b.generator(G.state_dict(), PAPER), "D": b.discriminator(D.state_dict(), PAPER_D),
                "G_ema": b.generator(G.state_dict(), PAPER), "augment_pipe": None, "training_set_kwargs": {}}
        with open(tmp / "snap.pkl", "wb") as f:
            RefPickler(f, protocol=4).dump(snap)
        save_network(tmp / "ema", G, ["a", "b"], 512, 400)
        save_network(tmp / "full", G, ["a", "b"], 512, 400, D=D, G_train=G)
        torch.save(G.state_dict(), tmp / "sd.pt")
        rows = [
            ("baseline torch.load(state dict) + load_state_dict", "sd.pt",
             lambda: Generator(**PAPER).load_state_dict(torch.load(tmp / "sd.pt", weights_only=True))),
            ("reference pickle -> G_ema", "snap.pkl", lambda: load_network(tmp / "snap.pkl", "cpu")),
            ("reference pickle -> G_ema, G, D", "snap.pkl", lambda: load_network(tmp / "snap.pkl", "cpu", True)),
            ("native (G_ema only file) -> G_ema", "ema/network.safetensors", lambda: load_network(tmp / "ema", "cpu")),
            ("native (G+D file) -> G_ema", "full/network.safetensors", lambda: load_network(tmp / "full", "cpu")),
            ("native (G+D file) -> G_ema, G, D", "full/network.safetensors",
             lambda: load_network(tmp / "full", "cpu", True)),
        ]
        print(f"{'case':52s} {'file MB':>8s} {'best s':>8s}")
        for name, file, fn in rows:
            print(f"{name:52s} {(tmp / file).stat().st_size / 2**20:8.1f} {_best(fn, repeats):8.2f}")


if __name__ == "__main__":
    main()
