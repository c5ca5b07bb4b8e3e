"""Feature extractors of the metrics and the pipelined loop that feeds them.

An extractor converts uint8 NHWC images (a torch tensor at the GAN's resolution) to its own input with
`from_uint8` and maps that input to features [N, D] float32 with `predict`, the same two steps as
explain.bridge's Bridge + classifier, so explain.bridge.predict_stream pipelines it: a producer thread renders
(generator or tile decoding) and converts while the calling thread extracts features.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, predict_stream

log = logging.getLogger("synthhist")


class InceptionFeatures:
    """Inception-v3 pool3 features [N, 2048] of uint8 images (resized to 299 inside, as the reference does)."""

    dim = 2048

    def __init__(self, net: torch.nn.Module, key: str, device: torch.device):
        self.net, self.key, self.device = net.eval(), key, device

    def from_uint8(self, x8: torch.Tensor) -> torch.Tensor:
        """[N, R, R, 3] uint8 -> [N, 3, R, R] uint8 on the extractor's device."""
        return x8.to(self.device).permute(0, 3, 1, 2).contiguous()

    def predict(self, x: torch.Tensor) -> np.ndarray:
        """[N, 3, R, R] uint8 -> [N, 2048] float32."""
        with torch.inference_mode():
            return self.net(x)[0].float().cpu().numpy()


def load_inception(device: torch.device, random_init: bool = False) -> InceptionFeatures:
    """The reference Inception-v3 from the verified weights in the cache (downloaded if missing)."""
    from synthhist.metrics.inception import fetch_weights, inception_v3, sha256_of

    if random_init:
        return InceptionFeatures(inception_v3(None, device), "inception-random", device)
    path = fetch_weights()
    return InceptionFeatures(inception_v3(path, device), f"inception-{sha256_of(path)[:16]}", device)


def penultimate_model(model):
    """Keras model from the classifier's input to the input of its last Dense layer (the penultimate features)."""
    import keras

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise UserError("fd_clf: the classifier has no Dense output layer to take penultimate features from")
    return keras.Model(model.inputs, dense[-1].input)


class ClassifierFeatures:
    """Penultimate-layer features of a histology classifier; GAN-sized tiles reach it through the Bridge."""

    def __init__(self, clf, bridge: Bridge, key: str):
        import keras
        import tensorflow as tf

        if not isinstance(getattr(clf, "model", None), keras.Model):
            raise UserError(f"fd_clf needs a Keras classifier (model.keras); {clf.source} has no Keras model "
                            "to take penultimate features from")
        self.clf, self.bridge, self.key = clf, bridge, key
        feat = penultimate_model(clf.model)
        self.dim = int(feat.output_shape[-1])
        sig = [tf.TensorSpec([None, None, None, 3], tf.float32)]
        self._forward = tf.function(lambda x: feat(x, training=False), input_signature=sig, autograph=False)

    def from_uint8(self, x8: torch.Tensor) -> np.ndarray:
        """[N, R, R, 3] uint8 GAN-sized tiles -> [N, clf_px, clf_px, 3] uint8 (crop to clf um, resize)."""
        return self.bridge.from_uint8(x8)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N, clf_px, clf_px, 3] uint8 -> [N, D] float32 (the classifier's normaliser and standardisation first)."""
        return np.asarray(self._forward(self.clf.preprocess(x))).reshape(len(x), -1).astype(np.float32)


def load_classifier_features(classifier: str, gan_px: int, gan_um: float) -> ClassifierFeatures:
    """ClassifierFeatures of a classifier reference (folder, .keras, hf:, demo) for GAN tiles of gan_px/gan_um."""
    from synthhist.classifier import load_classifier

    clf = load_classifier(classifier)
    bridge = Bridge.for_classifier(gan_px, gan_um, clf)
    log.info(f"fd_clf: classifier {clf.source} ({clf.tile_px} px / {clf.tile_um:g} um); GAN tile {gan_px} px / "
             f"{gan_um:g} um -> centre crop to {clf.tile_um:g} um, resize to {clf.tile_px} px")
    return ClassifierFeatures(clf, bridge, key=json.dumps([_stamp(classifier), gan_px, gan_um]))


def _stamp(ref: str) -> list:
    """A classifier reference with the name, size and mtime of each of its files (for the real-feature cache)."""
    p = Path(ref).expanduser()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
    return [ref, *((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)]


def stream_features(batches: Iterable, render: Callable[[object], torch.Tensor], ext, total: int,
                    desc: str) -> np.ndarray:
    """Features [total, D] of render(batch) -> [n, 3, R, R] float (-1..1) images, rendered on a producer thread."""
    from tqdm import tqdm

    out, done, last = [], 0, time.monotonic()
    with tqdm(total=total, unit="img", desc=desc, mininterval=5, disable=None) as bar:
        for _, feats, _ in predict_stream(batches, render, ext, ext):
            out.append(feats)
            bar.update(len(feats))
            done += len(feats)
            if bar.disable and time.monotonic() - last > 30:  # not a terminal: a log line every 30 s
                log.info(f"{desc}: {done}/{total} images")
                last = time.monotonic()
    return np.concatenate(out) if out else np.zeros((0, ext.dim), np.float32)
