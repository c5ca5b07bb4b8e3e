"""Small real Keras classifiers (saved as our model folder: model.keras + params.json) for the explain tests.

`write_colour_classifier` calibrates a one-feature model on a GAN so that the concordance search finds
strong, weak and 'none' seeds: feature u = +/-(mean R - mean B) of the standardised crop; categorical
p(class 1) = sigmoid(k (u - u0)), linear tanh(k (u - u0)); u0/k put the most class-sensitive seed at 'strong'.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from synthhist.gan.latent import onehot, z_from_seeds


def _model(tile_px: int, a: float, b: float, model_type: str):
    import keras

    inp = keras.Input((tile_px, tile_px, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)  # [N, 3] channel means
    if model_type == "linear":
        out = keras.layers.Dense(1, activation="tanh")(x)
        out_layer, w, bias = out, np.array([[a], [0.0], [-a]]), np.array([-a * b])
    else:
        out = keras.layers.Dense(2, activation="softmax")(x)
        w, bias = np.array([[-a / 2, a / 2], [0, 0], [a / 2, -a / 2]]), np.array([a * b / 2, -a * b / 2])
    model = keras.Model(inp, out)
    model.layers[-1].set_weights([w.astype(np.float32), bias.astype(np.float32)])
    return model


def write_classifier(dest: Path, tile_px: int, tile_um: float, a: float = 1.0, b: float = 0.0,
                     model_type: str = "categorical") -> Path:
    """Save a one-feature classifier folder; output ~ f(a * ((R - B) - b)) on standardised channel means."""
    dest.mkdir(parents=True, exist_ok=True)
    _model(tile_px, a, b, model_type).save(dest / "model.keras")
    params = {"tile_px": tile_px, "tile_um": tile_um, "model_type": model_type, "outcomes": ["subtype"],
              "outcome_labels": {"0": "a", "1": "b"} if model_type == "categorical" else {}, "hp": {}}
    (dest / "params.json").write_text(json.dumps(params))
    return dest


def write_colour_classifier(dest: Path, G, gan_px: int, gan_um: float, tile_px: int, tile_um: float,
                            seeds: list[int], model_type: str = "categorical") -> Path:
    """A classifier calibrated on G's class 0 / class 1 images of these seeds (see module docstring)."""
    from synthhist.classifier import load_classifier
    from synthhist.explain.bridge import Bridge

    clf = load_classifier(write_classifier(dest, tile_px, tile_um))
    bridge = Bridge.for_classifier(gan_px, gan_um, clf)
    z = z_from_seeds(seeds, G.z_dim)
    with torch.no_grad():
        u = [np.asarray(clf.preprocess(bridge(G(z, onehot(k, G.c_dim, len(seeds)))))).mean(axis=(1, 2)) for k in (0, 1)]
    d = [x[:, 0] - x[:, 2] for x in u]
    sign = 1.0 if (d[1] - d[0]).mean() >= 0 else -1.0
    us, ue = sign * d[0], sign * d[1]
    i = int(np.argmax(ue - us))
    delta = float(ue[i] - us[i])
    u0, k = float(us[i] + ue[i]) / 2, 4 * math.log(3) / delta  # that seed: p_start = 0.1, p_end = 0.9
    if model_type == "linear":
        k = 2 * math.atanh(0.7) / delta  # that seed: -0.7 / +0.7
    return write_classifier(dest, tile_px, tile_um, a=sign * k, b=sign * u0, model_type=model_type)


def build_models(d: Path, seeds: list[int]) -> dict:
    """Golden 32 px GAN (400 um tiles; also without metadata, and an unconditional one) + calibrated
    16 px / 302 um Keras classifiers (categorical 'clf', linear 'linear'); 'G' is the generator itself."""
    from gan_fixtures import golden_generator, write_native

    from synthhist.gan import save_network

    G = golden_generator("g32_cond2")
    return {"net": write_native("g32_cond2", d / "net", tile_um=400.0),
            "bare": save_network(d / "bare", G),  # no tile metadata
            "uncond": write_native("g16_uncond", d / "uncond"),
            "clf": write_colour_classifier(d / "clf", G, 32, 400.0, 16, 302.0, seeds),
            "linear": write_colour_classifier(d / "lin", G, 32, 400.0, 16, 302.0, seeds, "linear"), "G": G}
