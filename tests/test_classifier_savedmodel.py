"""Slideflow classifier folders (TF SavedModels) load without running their graph: the network rebuilt from
params.json with the checkpoint's weights predicts what the saved graph does, gives real MC-dropout uncertainty,
and a crafted graph that writes a file writes nothing unless --trust-classifier is given."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from clf_fixtures import KINDS, PINK, texture, write_keras2_savedmodel
from synthhist.classifier import load_classifier
from synthhist.classifier.batchnorm import recalibrate_batchnorm
from synthhist.classifier.hparams import complete_hp
from synthhist.classifier.model import build_model
from synthhist.classifier.preprocess import standardize
from synthhist.errors import UserError

FIT = {"target_means": [60.0, 15.0, -10.0], "target_stds": [12.0, 7.0, 9.0]}


def trained_like(hp, px, seed=0):
    """build_model with BatchNorm statistics of real inputs and every weight moved off its initial value, so that
    different tiles get different predictions."""
    keras.utils.set_random_seed(seed)
    model = build_model(hp, px, 2, "categorical", weights=None)
    recalibrate_batchnorm(model, [(standardize(tiles(8, px, seed=s)),) for s in range(2)])
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.name == "moving_variance":
            w.assign(rng.uniform(0.8, 1.2, w.shape).astype("float32"))
        else:
            w.assign(w.numpy() + rng.normal(0, 0.02, w.shape).astype("float32"))
    return model


def slideflow_folder(tmp_path, hp, px, model, **kw):
    """models/00000-kind-HP0-kfold1/{params.json, kind-HP0-kfold1_epoch1/ (SavedModel)} as slideflow writes it."""
    run = tmp_path / "00000-kind-HP0-kfold1"
    write_keras2_savedmodel(run / "kind-HP0-kfold1_epoch1", model, **kw)
    (run / "params.json").write_text(json.dumps({
        "tile_px": px, "tile_um": px // 2, "model_type": "categorical", "outcomes": ["kind"],
        "outcome_labels": {"0": "coarse", "1": "fine"}, "norm_fit": FIT, "hp": hp}))
    return run


def tiles(n, px, seed=1):
    """uint8 [n,px,px,3]: coarse and fine textures of varying contrast (noise tiles all look alike to a network)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.clip(PINK + (texture(KINDS[i % 2], px, px, rng) - PINK) * (0.5 + i / n), 0, 255)
                     for i in range(n)]).astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("arch, px", [("mobilenet_v2", 32), ("xception", 71)])
def test_rebuilt_network_predicts_as_the_graph(tmp_path, arch, px):
    hp = complete_hp({"model": arch, "pooling": "avg", "hidden_layers": 2, "hidden_layer_width": 16, "dropout": 0.3,
                      "normalizer": "reinhard_fast", "uq": True})
    run = slideflow_folder(tmp_path, hp, px, trained_like(hp, px))
    x = tiles(6, px)
    rebuilt, graph = load_classifier(run), load_classifier(run, trust=True)
    expected = graph.predict(x, batch_size=4)
    if arch == "xception":                                              # (random MobileNet features are constant)
        assert np.ptp(expected[:, 0]) > 5e-5                            # tiles differ by more than the tolerance
    np.testing.assert_allclose(rebuilt.predict(x, batch_size=4), expected, rtol=0, atol=1e-5)
    mean, sd = rebuilt.predict_uq(x, passes=8)                          # MC dropout of the rebuilt network
    assert (sd > 0).all() and np.abs(mean - expected).max() < 0.5
    with pytest.raises(UserError, match="uncertainty needs"):           # a saved graph has no MC dropout
        graph.predict_uq(x)


@pytest.mark.slow
def test_crafted_graph_writes_nothing_by_default(tmp_path):
    hp = complete_hp({"model": "mobilenet_v2", "pooling": "avg", "hidden_layers": 0, "normalizer": None})
    marker = tmp_path / "pwned.txt"
    run = slideflow_folder(tmp_path, hp, 32, trained_like(hp, 32),
                           side_effect=lambda: tf.io.write_file(str(marker), "written by the saved graph"))
    x = tiles(2, 32)
    load_classifier(run).predict(x)
    load_classifier(run / "kind-HP0-kfold1_epoch1", uq=True).predict_uq(x, passes=2)
    assert not marker.exists()
    load_classifier(run, trust=True).predict(x)                         # the fixture's graph does write when run
    assert marker.read_text() == "written by the saved graph"


@pytest.mark.slow
def test_checkpoint_that_does_not_fit_params(tmp_path):
    hp = complete_hp({"model": "mobilenet_v2", "pooling": "avg", "hidden_layers": 1, "hidden_layer_width": 8})
    run = slideflow_folder(tmp_path, hp, 32, trained_like(hp, 32))
    params = json.loads((run / "params.json").read_text())
    params["hp"]["hidden_layers"] = 2                                   # params.json describes another head
    (run / "params.json").write_text(json.dumps(params))
    with pytest.raises(UserError, match="unmatched variables: .*hidden_1"):
        load_classifier(run)
    params["hp"]["hidden_layers"], params["hp"]["hidden_layer_width"] = 1, 4
    (run / "params.json").write_text(json.dumps(params))
    with pytest.raises(UserError, match="shapes differ"):
        load_classifier(run)
    del params["hp"]["model"]
    (run / "params.json").write_text(json.dumps(params))
    with pytest.raises(UserError, match="--trust-classifier"):
        load_classifier(run)


@pytest.mark.slow
def test_keras3_export_layout(tmp_path):
    hp = complete_hp({"model": "mobilenet_v2", "pooling": "max", "hidden_layers": 1, "hidden_layer_width": 8,
                      "dropout": 0.2, "normalizer": None})
    model = trained_like(hp, 32, seed=3)
    model.export(str(tmp_path / "m"), verbose=False)
    (tmp_path / "params.json").write_text(json.dumps({"tile_px": 32, "tile_um": 16, "model_type": "categorical",
                                                      "outcome_labels": {"0": "a", "1": "b"}, "hp": hp}))
    x = tiles(3, 32)
    np.testing.assert_allclose(load_classifier(tmp_path / "m").predict(x),
                               load_classifier(tmp_path / "m", trust=True).predict(x), rtol=0, atol=1e-5)
