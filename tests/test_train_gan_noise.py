"""gan_kwargs 'noise': false trains G without its noise inputs: their strengths stay 0, so the seed alone decides."""

import json

import pytest
import torch

from gan_train_fixtures import TINY, make_project, one_thread  # noqa: F401
from synthhist.config import load_experiment
from synthhist.errors import UserError
from synthhist.gan.train.options import TrainOptions, resolve_options

pytestmark = pytest.mark.usefixtures("one_thread")


def _strengths(G) -> list[float]:
    return [float(p.detach()) for name, p in G.named_parameters() if name.endswith("noise_strength")]


def test_default_is_the_papers_generator():
    assert TrainOptions().noise is True


def test_the_config_key_reaches_the_options_and_must_be_a_boolean(tmp_path):
    p = make_project(tmp_path, gan_kwargs={"noise": False})
    exp = load_experiment(p.config)
    assert resolve_options(exp.gan_kwargs, 16, {}).noise is False
    cfg = json.loads(p.config.read_text())
    cfg["gan_kwargs"]["noise"] = "off"
    p.config.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="noise"):
        load_experiment(p.config)


def test_a_run_without_noise_keeps_every_strength_at_zero(tmp_path, script):
    """train_gan.py with noise false and the diversity hinge on: noise changes no image."""
    from synthhist.gan import load_network

    p = make_project(tmp_path, gan_kwargs={"noise": False, "diversity": 0.5})
    script("train_gan.py", "--exp", p.config, "--outdir", p.root, "--kimg", "0.016", "--tick", "0.016", *TINY)
    snap = next(p.gan_dir.glob("*/network-snapshot-*"))
    net = load_network(snap, training=True)
    assert json.loads((snap.parent / "training_options.json").read_text())["noise"] is False
    for G in (net.G, net.G_train):
        assert _strengths(G) and set(_strengths(G)) == {0.0}
    z, c = torch.randn(4, net.G.z_dim), torch.eye(2)[[0, 1, 0, 1]]
    with torch.no_grad():
        torch.testing.assert_close(net.G(z, c, noise_mode="const"), net.G(z, c, noise_mode="random"), rtol=0, atol=0)
    assert net.G_train.mapping.fc0.weight.ne(net.G.mapping.fc0.weight).any()  # it did train


def test_resuming_with_noise_off_zeroes_the_learnt_strengths(tmp_path, script):
    from synthhist.gan import load_network

    p = make_project(tmp_path)
    args = ["--exp", p.config, "--outdir", p.root, "--tick", "0.016", *TINY]
    script("train_gan.py", *args, "--kimg", "0.016")
    first = next(p.gan_dir.glob("*/network-snapshot-*"))
    assert any(_strengths(load_network(first, training=True).G_train))   # learnt with noise on
    cfg = json.loads(p.config.read_text())
    cfg["gan_kwargs"]["noise"] = False
    p.config.write_text(json.dumps(cfg))
    out = script("train_gan.py", *args, "--kimg", "0.032", "--resume", "latest")
    assert "noise strengths of G and G_ema set to 0" in out.stdout + out.stderr
    last = max(p.gan_dir.glob("*/network-snapshot-*"))
    assert last != first
    net = load_network(last, training=True)
    for G in (net.G, net.G_train):
        assert set(_strengths(G)) == {0.0}
