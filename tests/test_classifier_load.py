"""load_classifier: a slideflow-style TF SavedModel (+ params.json) gives the same outputs as calling the model
directly on preprocessed tiles; our .keras folders with MC dropout; clear errors for bad input."""

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from synthhist.classifier import load_classifier
from synthhist.classifier.hparams import complete_hp
from synthhist.classifier.model import build_model
from synthhist.classifier.preprocess import REINHARD_FAST_V1, reinhard_fast, standardize
from synthhist.errors import UserError

PX = 32
FIT = {"target_means": [60.0, 15.0, -10.0], "target_stds": [12.0, 7.0, 9.0]}


def small_model(n_out=2, name="out-0"):
    inp = keras.Input((PX, PX, 3), name="tile_image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="post_convolution")(x)
    x = keras.layers.Dropout(0.2)(x)
    x = keras.layers.Dense(n_out, name="prelogits-0")(x)
    return keras.Model(inp, keras.layers.Activation("softmax", name=name)(x))


def params(**over):
    p = {"tile_px": PX, "tile_um": 16, "model_type": "categorical", "outcomes": ["kind"],
         "outcome_labels": {"0": "coarse", "1": "fine"}, "norm_fit": FIT,
         "hp": {"normalizer": "reinhard_fast", "normalizer_source": None, "uq": False,
                "loss": "sparse_categorical_crossentropy"}}
    p.update(over)
    return p


def tiles(n=5, px=PX, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, px, px, 3)).astype(np.uint8)


def test_slideflow_savedmodel_matches_direct_call(tmp_path):
    keras.utils.set_random_seed(0)
    model = small_model()
    run = tmp_path / "00000-kind-HP0-kfold1"
    inner = run / "kind-HP0-kfold1_epoch1"
    model.export(str(inner), verbose=False)
    (run / "params.json").write_text(json.dumps(params()))             # slideflow: params in the run folder
    x = tiles()
    expected = model(standardize(reinhard_fast(tf.constant(x), **FIT)), training=False).numpy()
    for ref in (run, inner):                                            # run folder, or the model folder itself
        clf = load_classifier(ref, trust=True)              # an architecture params.json cannot describe
        assert (clf.tile_px, clf.model_type, clf.outcome_labels, clf.n_outputs) == (PX, "categorical", ["coarse", "fine"], 2)
        np.testing.assert_allclose(clf.predict(x, batch_size=2), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="uncertainty needs"):
        clf.predict_uq(x)
    legacy = params(outcome_label_headers=["kind"], norm_mean=FIT["target_means"], norm_std=FIT["target_stds"])
    del legacy["outcomes"], legacy["norm_fit"]
    shutil.copy(run / "params.json", tmp_path / "keep.json")
    (inner / "params.json").write_text(json.dumps(legacy))             # params inside the model folder (legacy keys)
    clf = load_classifier(inner, trust=True)
    assert clf.outcomes == ["kind"] and clf.norm_fit == FIT
    np.testing.assert_allclose(clf.predict(x), expected, rtol=1e-5, atol=1e-6)


def test_keras_folder_and_mc_dropout(tmp_path):
    keras.utils.set_random_seed(1)
    hp = complete_hp({"model": "mobilenet_v2", "pooling": "avg", "hidden_layers": 1, "hidden_layer_width": 8,
                      "dropout": 0.5, "normalizer": "reinhard_fast", "uq": True})
    model = build_model(hp, PX, 2, "categorical", weights=None)
    assert model.get_layer("out-0") is not None and model.get_layer("post_convolution") is not None
    model.get_layer("hidden_0").bias.assign(np.ones(8))   # untrained MobileNetV2 features are ~0: give dropout a signal
    model.save(tmp_path / "kind-HP0_epoch1.keras")
    (tmp_path / "params.json").write_text(json.dumps(params(hp=hp, norm_fit=REINHARD_FAST_V1)))
    clf = load_classifier(tmp_path)
    assert clf.uq
    x = tiles(4)
    p = clf.predict(x)
    np.testing.assert_allclose(p, clf.predict(x), rtol=1e-6)            # deterministic without MC
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    mean, sd = clf.predict_uq(x)
    assert mean.shape == sd.shape == (4, 2) and (sd > 0).all()
    with pytest.raises(UserError, match="expects 32 px"):
        clf.predict(tiles(2, px=40))
    with pytest.raises(UserError, match="uint8"):
        clf.predict(x.astype(np.float32))


def test_bad_references(tmp_path, monkeypatch):
    small_model().export(str(tmp_path / "m"), verbose=False)
    with pytest.raises(UserError, match="no params.json"):
        load_classifier(tmp_path / "m")
    with pytest.raises(UserError, match="not found"):
        load_classifier(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .keras model or TF SavedModel"):
        load_classifier(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="Hugging Face Hub"):
        load_classifier("hf:someone/not-cached-model")
