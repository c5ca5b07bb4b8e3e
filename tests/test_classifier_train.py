"""train_classifier.py end to end on tiny synthetic slides (two textures), plus its bad-input messages."""

import json

import numpy as np
import pandas as pd
import pytest

from clf_fixtures import KINDS, texture, write_config, write_labels, write_slides
from synthhist.classifier import load_classifier
from synthhist.classifier.metrics import roc_auc

PARAMS_KEYS = {"slideflow_version", "project", "backend", "git_commit", "model_name", "full_model_name", "stage",
               "img_format", "tile_px", "tile_um", "max_tiles", "min_tiles", "model_type", "outcomes",
               "input_features", "input_feature_sizes", "input_feature_labels", "outcome_labels", "dataset_config",
               "sources", "annotations", "validation_strategy", "validation_fraction", "validation_k_fold",
               "k_fold_i", "filters", "hp", "training_kwargs", "norm_fit"}


def cohort(root, n_per_class=4, single_class=False):
    kinds = {f"slide{c}{i}": ("fine" if single_class else kind) for c, kind in enumerate(KINDS) for i in range(n_per_class)}
    write_slides(root, kinds)
    write_labels(root, kinds)
    return write_config(root / "exp.json")


def one_error_line(proc, *words):
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in last, last
    return last


@pytest.mark.slow
def test_train_script_two_textures(tmp_path, script):
    cfg = cohort(tmp_path)
    script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path, "--val-strategy", "fixed",
           "--val-fraction", "0.25", "--weights", "none", "--seed", "3", timeout=1200)
    run = tmp_path / "models" / "00000-kind-HP0"
    params = json.loads((run / "params.json").read_text())
    assert PARAMS_KEYS <= set(params)
    assert params["outcome_labels"] == {"0": "coarse", "1": "fine"} and params["model_type"] == "categorical"
    assert params["tile_px"] == 72 and params["norm_fit"]["target_means"][0] == pytest.approx(63.71194)
    assert (run / "kind-HP0_epoch1.keras").is_file()
    manifest = pd.read_csv(run / "slide_manifest.csv")
    assert list(manifest.columns) == ["slide", "dataset", "outcome_label"]
    assert sorted(manifest["dataset"].value_counts().to_dict().items()) == [("training", 6), ("validation", 2)]
    assert len(json.loads((tmp_path / "splits.json").read_text())) == 1
    results = pd.read_csv(tmp_path / "results_log.csv")
    assert set(results["level"]) == {"tile", "slide", "patient"}
    tiles = pd.read_csv(run / "tile_predictions_val_epoch1.csv")
    assert len(tiles) == 2 * 25 and {"slide", "patient", "loc_x", "loc_y", "y_true", "y_pred0", "y_pred1"} <= set(tiles.columns)
    tile_auc = results.query("level == 'tile' and metric == 'auc' and outcome == 'fine'")["value"].item()
    assert tile_auc > 0.9, results

    # held-apart tiles (new random textures) through the loader
    clf = load_classifier(run)
    rng = np.random.default_rng(99)
    x = np.stack([texture(k, 72, 72, rng) for k in KINDS for _ in range(16)])
    y = np.repeat([0, 1], 16)
    p = clf.predict(x)
    assert p.shape == (32, 2) and roc_auc(y == 1, p[:, 1]) > 0.9

    again = script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path, "--val-strategy", "fixed",
                   "--val-fraction", "0.25", "--weights", "none", "--seed", "3")
    assert "already trained" in again.stderr and not (tmp_path / "models" / "00001-kind-HP0").exists()


@pytest.mark.slow
def test_train_script_bad_inputs(tmp_path, script):
    cfg = cohort(tmp_path / "one", n_per_class=1, single_class=True)
    proc = script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path / "one", "--weights", "none", check=False)
    one_error_line(proc, "single class", "fine")

    cfg = cohort(tmp_path / "two", n_per_class=1)
    proc = script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path / "two", "--weights", "none", check=False)
    one_error_line(proc, "k-fold with k=3", "patients (2)")
    proc = script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path / "two", "--val-strategy", "none",
                  "--weights", str(tmp_path / "missing.h5"), check=False)
    one_error_line(proc, "missing.h5")

    write_config(cfg, outcome="nope")
    proc = script("train_classifier.py", "--exp", cfg, "--outdir", tmp_path / "two", check=False)
    one_error_line(proc, "nope")
