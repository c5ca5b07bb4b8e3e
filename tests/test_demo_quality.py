"""The demo's quality figures (synthhist.demo.quality) and the cheap targets of issue #12 on the bundled models."""

import numpy as np
import pytest

from synthhist.demo import quality as q


def test_figures_on_known_images():
    rng = np.random.default_rng(0)
    flat = np.full((4, 8, 8, 3), 100, np.uint8)
    assert q.seed_std(flat) == 0
    assert q.noise_effect(flat, flat + 51) == pytest.approx(0.2)
    white = flat.copy()
    white[:, :2] = 255                                   # 2 of 8 rows near-white
    assert q.white_fraction(white) == 0.25
    h = q.colour_histograms(rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    assert h.shape == (3, 48) and np.allclose(h.reshape(3, 3, 16).sum(-1), 1)


def test_colour_only_accuracy_separates_colour_not_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6))
    y = np.repeat([0.0, 1.0], 100)
    shifted = x + y[:, None] * 2.0                       # the classes differ in colour
    assert q.colour_only_accuracy(shifted[::2], y[::2], shifted[1::2], y[1::2]) > 0.9
    assert q.colour_only_accuracy(x[::2], y[::2], x[1::2], y[1::2]) < 0.7    # they do not


def test_demo_colour_does_not_tell_the_classes_apart():
    """Fresh demo tiles: a colour-histogram classifier stays near chance (the cohort's design goal)."""
    tiles = {k: [q.real_tiles(k, 24, 96, 144, seed=1000 * (i + 1) + 100 * s) for s in (0, 1)]
             for i, k in enumerate(("gland", "spindle"))}
    hist = [np.concatenate([q.colour_histograms(tiles[k][s]) for k in tiles]) for s in (0, 1)]
    y = np.repeat([0.0, 1.0], 24)
    assert q.colour_only_accuracy(hist[0], y, hist[1], y) <= 0.75


def test_bundled_gan_is_diverse_and_the_seed_matters_more_than_the_noise():
    """Cheap targets on 16 seeds per class: std across seeds >= 0.6x real tiles', >= 2x the noise effect."""
    from synthhist.gan import load_network

    net = load_network("demo", device="cpu")
    seeds = list(range(16))
    for i, kind in enumerate(net.class_names):
        const, rand = q.seed_images(net.G, i, seeds, "const"), q.seed_images(net.G, i, seeds, "random")
        real = q.real_tiles(kind, 16, net.tile_px, net.tile_um, seed=7000 + 100 * i)
        assert q.seed_std(const) >= 0.6 * q.seed_std(real), (kind, q.seed_std(const), q.seed_std(real))
        assert q.seed_std(const) >= 2 * q.noise_effect(const, rand), (kind, q.seed_std(const), q.noise_effect(const, rand))
