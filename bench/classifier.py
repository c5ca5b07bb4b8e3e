"""Benchmark: predictions/s at 299 px through load_classifier (uint8 -> Reinhard-fast -> standardise -> model)
versus a bare model.predict of the same model on already-preprocessed tensors (and a bare model call under one
tf.function), same batches, in the same run.

    python bench/classifier.py [--tiles 64] [--batch 16] [--repeats 3]
"""

import json
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import tensorflow as tf

from synthhist.classifier import load_classifier
from synthhist.classifier.hparams import complete_hp
from synthhist.classifier.model import build_model
from synthhist.classifier.preprocess import REINHARD_FAST_V1

PX = 299


def best_rates(fns: dict, n: int, repeats: int) -> dict[str, float]:
    """Tiles/s of the fastest of `repeats` timed calls of each fn (after one warm-up call each), the fns taking
    turns so that a change in machine load hits them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: n / min(ts) for name, ts in times.items()}


@click.command()
@click.option("--tiles", default=64, show_default=True, help="Tiles per timed call.")
@click.option("--batch", default=16, show_default=True, help="Batch size.")
@click.option("--repeats", default=3, show_default=True, help="Timed calls (best is reported).")
def main(tiles: int, batch: int, repeats: int) -> None:
    hp = complete_hp({"model": "xception", "pooling": "avg", "hidden_layers": 2, "hidden_layer_width": 1024,
                      "dropout": 0.1, "normalizer": "reinhard_fast"})
    model = build_model(hp, PX, 2, "categorical", weights=None)
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d) / "bench-HP0_epoch1.keras")
        (Path(d) / "params.json").write_text(json.dumps({
            "tile_px": PX, "tile_um": 302, "model_type": "categorical", "outcomes": ["bench"],
            "outcome_labels": {"0": "a", "1": "b"}, "hp": hp, "norm_fit": REINHARD_FAST_V1}))
        clf = load_classifier(d)
    rng = np.random.default_rng(0)
    x = np.clip(np.array([200, 120, 170]) + rng.normal(0, 30, (tiles, PX, PX, 3)), 0, 255).astype(np.uint8)
    x_pre = clf.preprocess(x).numpy()
    call = tf.function(lambda t: clf.model(t, training=False), autograph=False)
    rates = best_rates({
        "ours": lambda: clf.predict(x, batch_size=batch),
        "bare": lambda: clf.model.predict(x_pre, batch_size=batch, verbose=0),
        "bare_call": lambda: [call(x_pre[i:i + batch]).numpy() for i in range(0, tiles, batch)],
        "prep": lambda: [clf.preprocess(x[i:i + batch]) for i in range(0, tiles, batch)],
    }, tiles, repeats)
    ours, bare, bare_call, prep = (rates[k] for k in ("ours", "bare", "bare_call", "prep"))
    print(f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}; {tiles} tiles of {PX} px, batch {batch}")
    print(f"bare model.predict on preprocessed tensors: {bare:8.2f} tiles/s")
    print(f"load_classifier().predict on uint8 tiles:    {ours:8.2f} tiles/s  ({(bare / ours - 1) * 100:+.1f}% time vs bare)")
    print(f"bare model call under tf.function:          {bare_call:8.2f} tiles/s  "
          f"(ours {(bare_call / ours - 1) * 100:+.1f}% time vs this)")
    print(f"preprocessing alone (Reinhard + standardise): {prep:8.2f} tiles/s")


if __name__ == "__main__":
    main()
