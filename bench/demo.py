"""The demo's targets (issue #12), measured on a GAN + classifier pair against fresh real demo tiles.

Real tiles are painted by synthhist.demo.tissue as the demo slides are, at their level-0 resolution (--mpp),
then resized to the network's or the classifier's tile as the tiler does (each tile its own slide, so every
one is held out from training). Prints, per class and overall:
- colour-only baseline: a logistic regression on per-channel colour histograms of real classifier-size
  tiles, trained on one set and scored on another (target: at most 0.65);
- classifier accuracy on real held-out tiles (target: at least 0.95);
- pixel std across seeds, synthetic / real (target: at least 0.6);
- std across seeds / mean |const - random noise| (target: at least 2);
- near-white fraction of synthetic / real gland tiles (target: 0.5 to 2);
- classifier accuracy on real tiles painted at the GAN's tile and cropped / resized to the classifier's as
  concordance.py bridges GAN images: what a perfect GAN would score, so a bound on concordance at its resolution;
- strongly concordant seeds (target: at least 90%).

    PYTHONPATH=. python bench/demo.py --network demo --classifier demo --num 64
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click
import numpy as np

from synthhist.cli import command, run
from synthhist.demo import quality as q
from synthhist.demo.tissue import MPP


def _held_out_accuracy(clf, tiles: dict[str, np.ndarray]) -> float:
    """Accuracy of the classifier's argmax on real tiles of each class (uint8 NHWC in)."""
    hits = [clf.predict(tiles[k]).argmax(1) == i for i, k in enumerate(tiles)]
    return float(np.concatenate(hits).mean())


@command()
@click.option("--network", default="demo", show_default=True)
@click.option("--classifier", default="demo", show_default=True)
@click.option("--num", type=int, default=64, show_default=True, help="Seeds and real tiles per class")
@click.option("--mpp", type=click.FloatRange(min=0, min_open=True), default=MPP, show_default=True,
              help="Microns per pixel painted tissue is drawn at (the demo cohort's level 0).")
def main(network: str, classifier: str, num: int, mpp: float) -> None:
    """Print the demo targets for a GAN + classifier pair."""
    import torch

    from synthhist.classifier import load_classifier
    from synthhist.explain.bridge import Bridge, gan_tile
    from synthhist.explain.search import SearchOptions, concordance_search
    from synthhist.gan import load_network

    net = load_network(network, device="cpu")
    clf = load_classifier(classifier)
    names = net.class_names
    seeds = list(range(num))
    clf_tiles = {k: q.real_tiles(k, num, clf.tile_px, clf.tile_um, mpp=mpp, seed=10_000 * (i + 1))
                 for i, k in enumerate(names)}
    train = {k: q.real_tiles(k, num, clf.tile_px, clf.tile_um, mpp=mpp, seed=50_000 * (i + 1))
             for i, k in enumerate(names)}
    hist = lambda d: np.concatenate([q.colour_histograms(d[k]) for k in names])  # noqa: E731
    labels = np.repeat([0.0, 1.0], num)
    print(f"colour-only logistic regression, held out: {q.colour_only_accuracy(hist(train), labels, hist(clf_tiles), labels):.3f}"
          "  (target <= 0.65)")
    print(f"classifier accuracy on real held-out tiles: {_held_out_accuracy(clf, clf_tiles):.3f}  (target >= 0.95)")

    bridge, bridged = Bridge.for_classifier(*gan_tile(net), clf), {}
    for i, k in enumerate(names):
        real = q.real_tiles(k, num, net.tile_px, net.tile_um, mpp=mpp, seed=90_000 * (i + 1))
        bridged[k] = bridge.from_uint8(torch.from_numpy(real))
        const, rand = q.seed_images(net.G, i, seeds, "const"), q.seed_images(net.G, i, seeds, "random")
        s_fake, s_real, noise = q.seed_std(const), q.seed_std(real), q.noise_effect(const, rand)
        w_fake, w_real = q.white_fraction(const), q.white_fraction(real)
        ratio = f"{s_fake / noise:.1f}x" if noise else "inf (noise off)"
        print(f"{k}: seed std {s_fake:.3f} vs real {s_real:.3f} = {s_fake / s_real:.2f}x (target >= 0.6); "
              f"seed/noise {s_fake:.3f}/{noise:.3f} = {ratio} (target >= 2); "
              f"near-white {w_fake:.3f} vs real {w_real:.3f} = {w_fake / max(w_real, 1e-9):.2f}x"
              + (" (target 0.5-2)" if k == "gland" else ""))

    print(f"classifier accuracy on real tiles at the GAN's {bridge.gan_px} px / {bridge.gan_um:g} um, bridged to its "
          f"{bridge.clf_px} px / {bridge.clf_um:g} um: {_held_out_accuracy(clf, bridged):.3f}  (a bound on concordance)")
    with tempfile.TemporaryDirectory() as tmp:
        search = concordance_search(Path(tmp) / "concordance.csv",
                                    SearchOptions(network=network, classifier=classifier, seeds=f"0-{num - 1}",
                                                  device="cpu"), logging.getLogger("synthhist"))
    strong = float((search.result["concordance"] == "strong").mean())
    print(f"strongly concordant seeds: {100 * strong:.0f}%  (target >= 90%)")


if __name__ == "__main__":
    run(main)
