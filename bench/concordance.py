"""Benchmark: concordance seeds/s at the paper's shapes, and the cost of the pipeline over its parts.

512 px class-conditional StyleGAN2 (random weights, 8-layer mapping) -> crop 400 -> 302 um -> 299 px
Xception (random weights, softmax over 2 classes). Each seed needs 2 generator images and 2 predictions.

Baseline in the same run: the generator alone and the classifier alone on the same number of images.
Target: the whole pipelined run takes at most 10% longer than generator + classifier alone.

    python bench/concordance.py                 # 4 seeds, batch 2: about 5 minutes on 2 (busy) CPU cores
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click
import torch

from synthhist.device import resolve_device
from synthhist.explain.bridge import Bridge, Timings
from synthhist.explain.concordance import class_renderer, seed_search


def make_generator(device):
    """Paper-shaped generator (512 px, z/w 512, 8 mapping layers, 2 classes), random weights."""
    from synthhist.gan import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=2, w_dim=512, img_resolution=512, img_channels=3,
                  mapping_kwargs={"num_layers": 8})
    return G.eval().requires_grad_(False).to(device)


def make_classifier():
    """Paper-shaped classifier: Xception at 299 px / 302 um, random weights, the project's Classifier wrapper
    (Reinhard-fast normaliser + standardisation, softmax over 2 classes)."""
    import keras

    from synthhist.classifier import Classifier
    from synthhist.classifier.hparams import complete_hp
    from synthhist.classifier.model import build_model

    keras.utils.set_random_seed(0)
    hp = complete_hp({"model": "xception", "normalizer": "reinhard_fast"})
    model = build_model(hp, 299, 2, "categorical", weights=None)
    params = {"tile_px": 299, "tile_um": 302, "model_type": "categorical", "outcome_labels": {"0": "a", "1": "b"},
              "hp": hp}
    return Classifier(lambda x: model(x, training=False), None, 2, params, "bench", False, model)


@click.command()
@click.option("--seeds", type=int, default=4, show_default=True, help="Number of seeds")
@click.option("--batch", type=int, default=2, show_default=True, help="Seeds per batch")
@click.option("--device", default=None, help="cpu or cuda [default: cuda if available]")
def main(seeds, batch, device):
    """Time generator, bridge and classifier alone, then the pipelined concordance search."""
    dev = resolve_device(device)
    G, clf = make_generator(dev), make_classifier()
    bridge = Bridge(512, 400.0, clf.tile_px, clf.tile_um)
    render = class_renderer(G, 0, 1, 1.0, "const", dev)
    chunks = [list(range(i, min(i + batch, seeds))) for i in range(0, seeds, batch)]
    with torch.inference_mode():  # warm-up (first-call allocations, TF graph tracing)
        clf.predict(bridge(render(chunks[0][:1])))

    def timed(fn):
        t0 = time.perf_counter()
        out = [fn(c) for c in chunks]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    with torch.inference_mode():
        imgs, t_gen = timed(render)
        it = iter(imgs)
        xs, t_bridge = timed(lambda c: bridge(next(it)))
    it = iter(xs)
    _, t_clf = timed(lambda c: clf.predict(next(it)))

    t = Timings()
    df = seed_search(G, list(range(seeds)), 0, 1, bridge, clf, 1, (0.25, 0.5, 0.75), batch=batch, device=dev, timings=t)
    assert len(df) == seeds
    parts = t_gen + t_clf
    print(f"device {dev}, torch threads {torch.get_num_threads()}, {seeds} seeds ({2 * seeds} images), batch {batch}")
    print(f"alone:     generator {t_gen:7.2f} s   bridge {t_bridge:6.2f} s   classifier {t_clf:7.2f} s")
    print(f"pipelined: generator {t.generator:7.2f} s   bridge {t.bridge:6.2f} s   classifier {t.classifier:7.2f} s "
          "(stage times inside the run; they overlap)")
    print(f"whole run {t.wall:.2f} s = {seeds / t.wall:.3f} seeds/s; generator + classifier alone {parts:.2f} s = "
          f"{seeds / parts:.3f} seeds/s; overhead {100 * (t.wall / parts - 1):+.1f}% (target <= +10%)")


if __name__ == "__main__":
    from synthhist.cli import run

    run(main)
