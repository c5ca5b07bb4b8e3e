"""Load a trained classifier (ours, slideflow's TF SavedModel, or from the Hugging Face Hub) as a Classifier that
takes uint8 RGB tiles and applies its own preprocessing (stain normaliser with norm_fit, standardisation)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from synthhist.classifier.hparams import model_type_of
from synthhist.classifier.preprocess import make_preprocess, norm_fit_for
from synthhist.classifier.savedmodel import rebuild_savedmodel
from synthhist.errors import UserError

log = logging.getLogger("synthhist")
UQ_PASSES = 30


class MCDropout(keras.layers.Dropout):
    """Dropout that is always active (Monte Carlo dropout at inference)."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def mc_dropout_model(model: keras.Model) -> keras.Model:
    """The same model (shared weights) with every Dropout always on; BatchNorm etc. stay in inference mode."""
    return keras.models.clone_model(
        model, clone_function=lambda l: MCDropout.from_config(l.get_config()) if isinstance(l, keras.layers.Dropout) else l)


class Classifier:
    """A loaded classifier: tile_px, tile_um, model_type, outcomes, outcome_labels, params, n_outputs, uq;
    predict(uint8 NHWC) -> [N, n_outputs]; predict_uq(uint8 NHWC) -> (mean, sd) over 30 MC-dropout passes."""

    def __init__(self, forward, forward_mc, n_outputs: int, params: dict, source: str, uq: bool, model=None):
        hp = params.get("hp", {})
        self.params, self.source, self.uq, self.model = params, source, uq, model
        self.tile_px = int(params["tile_px"])
        self.tile_um = params.get("tile_um")
        self.model_type = params.get("model_type") or model_type_of(hp)
        self.outcomes = list(params.get("outcomes") or [])
        labels = params.get("outcome_labels") or {}
        self.outcome_labels = [str(labels[k]) for k in sorted(labels, key=int)] if isinstance(labels, dict) \
            else [str(v) for v in labels]
        if not self.outcome_labels and self.model_type == "linear":
            self.outcome_labels = list(self.outcomes)
        self.n_outputs = n_outputs
        norm_fit = params.get("norm_fit")
        if hp.get("normalizer") and not norm_fit:
            norm_fit = norm_fit_for(hp.get("normalizer"), hp.get("normalizer_source"))
        elif hp.get("normalizer"):
            norm_fit_for(hp.get("normalizer"), None)  # checks the normaliser is supported
        self.norm_fit = norm_fit if hp.get("normalizer") else None
        self._preprocess = make_preprocess(hp.get("normalizer"), self.norm_fit)
        sig = [tf.TensorSpec([None, self.tile_px, self.tile_px, 3], tf.uint8)]
        self._predict = tf.function(lambda u8: forward(self._preprocess(u8)), input_signature=sig, autograph=False)
        self._predict_mc = None if forward_mc is None else \
            tf.function(lambda u8: forward_mc(self._preprocess(u8)), input_signature=sig, autograph=False)

    def __repr__(self) -> str:
        return (f"Classifier({self.source!r}, {self.model_type}, outcomes={self.outcomes}, "
                f"labels={self.outcome_labels}, tile {self.tile_px}px/{self.tile_um}um, uq={self.uq})")

    def _check(self, images) -> tf.Tensor:
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise UserError(f"classifier input must be uint8 RGB images [N,H,W,3], got shape {shape}")
        if shape[1:3] != (self.tile_px, self.tile_px):
            raise UserError(f"images are {shape[2]}x{shape[1]} px but the classifier expects {self.tile_px} px tiles "
                            f"({self.tile_um} um); crop/resize them first")
        if images.dtype not in (np.uint8, tf.uint8):
            raise UserError(f"classifier input must be uint8 RGB (0-255), got {images.dtype}")
        return tf.convert_to_tensor(images, tf.uint8)

    def preprocess(self, images) -> tf.Tensor:
        """uint8 [N,px,px,3] -> float32 model input (stain-normalised when the model was, then standardised)."""
        return self._preprocess(self._check(images))

    def predict(self, images, batch_size: int = 64) -> np.ndarray:
        """uint8 [N,px,px,3] -> float32 [N, n_outputs] (probabilities or regression values)."""
        images = self._check(images)
        outs = [self._predict(images[i:i + batch_size]).numpy() for i in range(0, images.shape[0], batch_size)]
        return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, self.n_outputs), np.float32)

    def predict_uq(self, images, batch_size: int = 64, passes: int = UQ_PASSES) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N,px,px,3] -> (mean, sd) each [N, n_outputs] over `passes` MC-dropout forward passes."""
        if self._predict_mc is None:
            raise UserError(f"{self.source}: uncertainty needs a model trained with hp uq, loaded without "
                            "--trust-classifier (a saved graph runs its dropout in inference mode)")
        images = self._check(images)
        means, sds = [], []
        for i in range(0, images.shape[0], batch_size):
            runs = np.stack([self._predict_mc(images[i:i + batch_size]).numpy() for _ in range(passes)])
            means.append(runs.mean(0))
            sds.append(runs.std(0))
        return np.concatenate(means).astype(np.float32), np.concatenate(sds).astype(np.float32)


def read_params(model_path: Path) -> dict:
    """params.json of a model (in its folder, else the parent), legacy keys converted (docs/slideflow.md §4.7)."""
    folder = model_path if model_path.is_dir() else model_path.parent
    for candidate in (folder / "params.json", folder.parent / "params.json"):
        if candidate.is_file():
            if candidate.parent != folder:
                log.warning(f"using {candidate} (params.json of the parent folder)")
            try:
                params = json.loads(candidate.read_text())
            except ValueError as e:
                raise UserError(f"{candidate} is not valid JSON ({e})") from None
            break
    else:
        raise UserError(f"{model_path}: no params.json in the model folder or its parent (not a classifier model?)")
    if "norm_mean" in params and not params.get("norm_fit"):
        params["norm_fit"] = {"target_means": params.pop("norm_mean"), "target_stds": params.pop("norm_std", None)}
    if "outcome_label_headers" in params and "outcomes" not in params:
        params["outcomes"] = params.pop("outcome_label_headers")
    if isinstance(params.get("outcomes"), str):
        params["outcomes"] = [params["outcomes"]]
    if "tile_px" not in params:
        raise UserError(f"{model_path}: params.json has no tile_px")
    return params


def _epoch(p: Path) -> int:
    m = re.search(r"_epoch(\d+)", p.name)
    return int(m.group(1)) if m else -1


def find_model(path: Path) -> Path:
    """The model inside a reference: a .keras file, a SavedModel folder, or the last-epoch one in a run folder."""
    if path.is_file() and path.suffix == ".keras":
        return path
    if not path.is_dir():
        raise UserError(f"classifier not found: {path} (expected a model folder, .keras file or hf:owner/repo)")
    if (path / "saved_model.pb").is_file():
        return path
    candidates = sorted(path.glob("*.keras")) + sorted(p for p in path.glob("*") if (p / "saved_model.pb").is_file())
    candidates = [c for c in candidates if not c.name.startswith(".")]
    if not candidates:
        raise UserError(f"{path}: no .keras model or TF SavedModel (saved_model.pb) in this folder")
    return max(candidates, key=lambda p: (_epoch(p), p.name))


def _savedmodel_forward(path: Path):
    """(forward fn float32 [N,H,W,3] -> [N,n_out], n_out) of a TF SavedModel's serving signature."""
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise UserError(f"{path}: cannot load the TF SavedModel ({str(e).splitlines()[0][:200]})") from None
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise UserError(f"{path}: SavedModel has no 'serving_default' signature (has {list(loaded.signatures)})")
    inputs = sig.structured_input_signature[1]
    if len(inputs) != 1:
        raise UserError(f"{path}: expected one image input, the serving signature has {list(inputs)}")
    in_name, in_spec = next(iter(inputs.items()))
    outputs = sig.structured_outputs
    key = next((k for k in ("out-0", "output", "output_0") if k in outputs), None) if len(outputs) > 1 \
        else next(iter(outputs))
    if key is None:
        raise UserError(f"{path}: cannot tell which serving output is the prediction ({list(outputs)})")

    def forward(x):
        return tf.cast(sig(**{in_name: tf.cast(x, in_spec.dtype)})[key], tf.float32)
    return forward, int(outputs[key].shape[-1]), loaded


def _keras_model(model_path: Path) -> keras.Model:
    try:
        return keras.models.load_model(model_path, compile=False)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"{model_path}: cannot load the Keras model ({str(e).splitlines()[0][:200]})") from None


def load_classifier(ref: str | Path, uq: bool | None = None, *, trust: bool = False) -> Classifier:
    """Classifier from our model folder / .keras file, a slideflow SavedModel folder (params.json in it or its
    parent), hf:owner/repo[/subfolder][@rev] or `demo` (the bundled demo classifier); uq None = the model's hp.uq.
    A SavedModel is rebuilt from params.json and its checkpoint; trust=True runs its saved graph instead."""
    from synthhist.refs import resolve

    ref_s = str(ref)
    model_path = find_model(resolve(ref_s, "classifier"))
    params = read_params(model_path)
    hp = params.get("hp", {})
    uq = bool(hp.get("uq")) if uq is None else bool(uq)
    if model_path.suffix == ".keras" or not trust:
        model = _keras_model(model_path) if model_path.suffix == ".keras" else rebuild_savedmodel(model_path, params)
        mc = mc_dropout_model(model)
        forward = lambda x: model(x, training=False)  # noqa: E731
        forward_mc = lambda x: mc(x, training=False)  # noqa: E731
        n_out, keep = int(model.output_shape[-1]), model
        in_px = model.input_shape[1]
    else:
        forward, n_out, keep = _savedmodel_forward(model_path)
        forward_mc = None  # the saved graph runs its dropout layers in inference mode: no MC dropout
        in_px = None
    if in_px is not None and in_px != int(params["tile_px"]):
        raise UserError(f"{model_path}: model input is {in_px} px but params.json says tile_px {params['tile_px']}")
    return Classifier(forward, forward_mc, n_out, params, ref_s, uq, keep)
