"""A short CPU run learns the class colours: reddish vs bluish tiles -> class-coloured generator images."""

import pytest
import torch

from gan_train_fixtures import TINY, make_project, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_generator_learns_class_colours(tmp_path, script):
    from synthhist.gan import load_network
    from synthhist.gan.latent import onehot

    p = make_project(tmp_path, px=16, slides_per_class={"blue": 2, "red": 2}, tiles=16)
    # 300 iterations of batch 4, no augmentation (the colour ops would hide the class colours early on).
    script("train_gan.py", "--exp", p.config, "--outdir", p.root, "--kimg", "1.2", "--tick", "0.4",
           "--snap", "10", "--aug", "noaug", *TINY)
    run, = [d for d in p.gan_dir.iterdir() if d.is_dir()]
    net = load_network(run / "network-snapshot-000001.200", device="cpu")
    z = torch.randn(64, net.G.z_dim, generator=torch.Generator().manual_seed(0))
    red_minus_blue = []
    for k in range(2):  # 0 = blue, 1 = red
        with torch.no_grad():
            img = net.G(z, onehot(k, 2, len(z)), noise_mode="const")
        red_minus_blue.append(float((img[:, 0] - img[:, 2]).mean()))
    # Real tiles: blue R-B = -1.10, red +1.10 (in [-1, 1] units).
    assert red_minus_blue[0] < -0.3 and red_minus_blue[1] > 0.3, red_minus_blue
