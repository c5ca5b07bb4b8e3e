"""Classifier building blocks: Reinhard-fast vs an independent numpy formula, augmentation, splits, balancing,
metrics, hyperparameter validation."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from synthhist.classifier.hparams import complete_hp
from synthhist.classifier.metrics import evaluate, roc_auc
from synthhist.classifier.pipeline import balance_weights
from synthhist.classifier.preprocess import (REINHARD_FAST_V1, augment, check_augment, fit_reinhard_fast,
                                             norm_fit_for, reinhard_fast, standardize)
from synthhist.classifier.splits import VALIDATION_STRATEGIES, get_splits, patients_table, tcga_site
from synthhist.errors import UserError

M = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
M_INV = np.array([[3.24048134, -1.53715152, -0.49853633], [-0.96925495, 1.87599, 0.04155593],
                  [0.05564664, -0.20404134, 1.05731107]])
WHITE = np.array([0.95047, 1.0, 1.08883])


def np_reinhard_fast(img: np.ndarray, target_means, target_stds) -> np.ndarray:
    """docs/slideflow.md §4.4, written out in float64 numpy."""
    c = img.astype(np.float64) / 255
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    t = (lin @ M.T) / WHITE
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
    mu, sd = lab.mean((0, 1)), lab.std((0, 1))
    lab = (lab - mu) * (np.array(target_stds) / sd) + np.array(target_means)
    fy = (lab[..., 0] + 16) / 116
    fxyz = np.stack([lab[..., 1] / 500 + fy, fy, np.maximum(fy - lab[..., 2] / 200, 0)], -1)
    xyz = np.where(fxyz > 0.2068966, fxyz ** 3, (fxyz - 16 / 116) / 7.787) * WHITE
    rgb = xyz @ M_INV.T
    rgb = np.where(rgb > 0.0031308, 1.055 * np.abs(rgb) ** (1 / 2.4) - 0.055, 12.92 * rgb)
    return np.clip((np.clip(rgb, 0, 1) * 255).astype(np.int32), 0, 255).astype(np.uint8)


def test_reinhard_fast_matches_numpy_formula():
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1)))
    imgs = np.stack([rng.integers(0, 256, (64, 64, 3)), np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255),
                     np.clip(np.array([200, 120, 170]) + rng.normal(0, 30, (64, 64, 3)), 0, 255)]).astype(np.uint8)
    ours = reinhard_fast(tf.constant(imgs), **REINHARD_FAST_V1).numpy()
    for i in range(len(imgs)):
        ref = np_reinhard_fast(imgs[i], **REINHARD_FAST_V1)
        diff = np.abs(ours[i].astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (i, diff.max(), (diff == 0).mean())


def test_norm_fit_preset_and_source_image(tmp_path):
    assert norm_fit_for("reinhard_fast", None) == REINHARD_FAST_V1
    assert norm_fit_for(None, None) is None
    rng = np.random.default_rng(1)
    img = np.clip(np.array([180, 100, 160]) + rng.normal(0, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
    from PIL import Image
    Image.fromarray(img).save(tmp_path / "src.png")
    fit = norm_fit_for("reinhard_fast", str(tmp_path / "src.png"))
    assert fit == fit_reinhard_fast(img)
    same = reinhard_fast(tf.constant(img[None]), **fit).numpy()[0]       # normalising to itself ~ identity
    assert np.abs(same.astype(int) - img.astype(int)).mean() < 1.5
    with pytest.raises(UserError, match="not supported"):
        norm_fit_for("macenko", None)
    with pytest.raises(UserError, match="no such image"):
        norm_fit_for("reinhard_fast", str(tmp_path / "missing.png"))


def test_augment_and_standardize():
    rng = np.random.default_rng(2)
    img = tf.constant(rng.integers(0, 256, (72, 72, 3)).astype(np.uint8))
    assert np.array_equal(augment(img, "").numpy(), img.numpy().astype(np.float32))
    out = augment(img, "xyr").numpy()                                   # flips/rotations keep the pixels
    assert out.shape == (72, 72, 3) and np.array_equal(np.sort(out.ravel()), np.sort(img.numpy().ravel()))
    tf.random.set_seed(0)
    outs = [augment(img, "xyrjb") for _ in range(20)]
    assert all(o.shape == (72, 72, 3) and o.dtype == tf.float32 for o in outs)
    s = standardize(tf.stack(outs)).numpy()
    assert np.allclose(s.mean((1, 2, 3)), 0, atol=1e-4) and np.allclose(s.std((1, 2, 3)), 1, atol=1e-3)
    assert check_augment(True) == "xyrjb" and check_augment(None) == ""
    with pytest.raises(UserError, match="augment"):
        check_augment("xyz")


def _patients(n=20, slides_per_patient=2):
    slide_patient, labels = {}, {}
    for p in range(n):
        for s in range(slides_per_patient):
            slide_patient[f"s{p}_{s}"] = f"p{p}"
            labels[f"s{p}_{s}"] = int(p % 3 == 0)
    return slide_patient, labels


def test_kfold_splits_never_share_patient_and_are_reused(tmp_path):
    slide_patient, labels = _patients()
    table = patients_table(slide_patient, labels)
    path = tmp_path / "splits.json"
    folds = get_splits(path, table, "k-fold", 3, 0.2, True, seed=5)
    assert len(folds) == 3 and sorted(sum(folds, [])) == sorted(slide_patient)
    pts = [{slide_patient[s] for s in f} for f in folds]
    assert all(not (pts[i] & pts[j]) for i in range(3) for j in range(i + 1, 3))
    positives = [sum(labels[s] for s in f) // 2 for f in folds]          # balanced per label: 7 positives -> 3,2,2
    assert sorted(positives) == [2, 2, 3]
    assert get_splits(path, table, "k-fold", 3, 0.2, True, seed=5) == folds   # reused from splits.json
    saved = json.loads(path.read_text())
    assert len(saved) == 1 and set(saved[0]["tfrecords"]) == {"k-fold-1", "k-fold-2", "k-fold-3"}
    fixed = get_splits(path, table, "fixed", 3, 0.25, True, seed=5)
    assert len(fixed) == 1 and len({slide_patient[s] for s in fixed[0]}) == round(7 * .25) + round(13 * .25)
    assert get_splits(path, table, "none", 3, 0.2, True, seed=5) == []
    with pytest.raises(UserError, match="k-fold with k=30"):
        get_splits(path, table, "k-fold", 30, 0.2, True, seed=5)
    with pytest.raises(UserError, match="different outcome labels"):
        patients_table({"a": "p", "b": "p"}, {"a": 0, "b": 1})


def test_bootstrap_and_preserved_site_splits(tmp_path):
    assert VALIDATION_STRATEGIES == ("k-fold", "k-fold-preserved-site", "fixed", "bootstrap", "none")
    assert (tcga_site("TCGA-A2-A04P-01Z-00-DX1"), tcga_site("tcga-e9-a1n5"), tcga_site("slide1")) == ("A2", "E9", None)
    rng = np.random.default_rng(0)
    sites = ["A1", "A2", "B6", "C8", "D8", "E2"]
    slide_patient, labels, slide_site = {}, {}, {}
    for i in range(30):                                                 # 30 patients at 6 sites, 1-2 slides each
        pt, label = f"TCGA-{sites[i % 6]}-{i:04d}", int(rng.random() < 0.4)
        for s in range(1 + i % 2):
            slide_patient[f"{pt}-0{s}Z"] = pt
            labels[f"{pt}-0{s}Z"] = label
            slide_site[f"{pt}-0{s}Z"] = tcga_site(pt)
    table = patients_table(slide_patient, labels, slide_site)
    path = tmp_path / "splits.json"
    folds = get_splits(path, table, "k-fold-preserved-site", 3, 0.2, True, seed=1)
    assert len(folds) == 3 and sorted(sum(folds, [])) == sorted(slide_patient)
    fold_sites = [{slide_site[s] for s in f} for f in folds]
    assert all(not (fold_sites[i] & fold_sites[j]) for i in range(3) for j in range(i + 1, 3))   # a site in one fold
    assert sorted(len(f) for f in fold_sites) == [2, 2, 2]
    assert get_splits(path, table, "k-fold-preserved-site", 3, 0.2, True, seed=1) == folds      # cached
    assert json.loads(path.read_text())[0]["strategy"] == "k-fold-preserved-site"
    with pytest.raises(UserError, match="at least 7 sites"):
        get_splits(path, table, "k-fold-preserved-site", 7, 0.2, True, seed=1)
    with pytest.raises(UserError, match="no site for patient"):
        get_splits(path, patients_table(slide_patient, labels, {}), "k-fold-preserved-site", 3, 0.2, True, seed=1)
    boot = get_splits(path, table, "bootstrap", 3, 0.2, True, seed=2)
    assert len(boot) == 1 and len({slide_patient[s] for s in boot[0]}) == int(0.2 * 30)
    assert boot == get_splits(path, table, "bootstrap", 3, 0.2, True, seed=2)                   # seeded
    assert boot != get_splits(path, table, "bootstrap", 3, 0.2, True, seed=3)
    assert len(json.loads(path.read_text())) == 1                       # bootstrap is drawn anew, never cached
    with pytest.raises(UserError, match="leaves the validation or the training set empty"):
        get_splits(path, table, "bootstrap", 3, 0.01, True, seed=2)


def test_balance_weights():
    slides = ["a", "b", "c", "d"]
    label = {"a": 0, "b": 0, "c": 0, "d": 1}
    patient = {"a": "p1", "b": "p1", "c": "p2", "d": "p3"}
    w = balance_weights(slides, "category", label, patient, {})
    assert np.allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    w = balance_weights(slides, "patient", label, patient, {})
    assert np.allclose(w, [1 / 6, 1 / 6, 1 / 3, 1 / 3])
    assert balance_weights(slides, "none", label, patient, {}) is None
    assert np.allclose(balance_weights(slides, "tile", label, patient, {"a": 1, "b": 1, "c": 2, "d": 4}),
                       [.125, .125, .25, .5])


def test_metrics_levels():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    tiles = pd.DataFrame({"slide": ["a", "a", "b", "b", "c"], "patient": ["p", "p", "p", "p", "q"],
                          "y_true": [0, 0, 0, 0, 1], "y_pred0": [.9, .4, .7, .8, .2], "y_pred1": [.1, .6, .3, .2, .8]})
    rows, tables = evaluate(tiles, "categorical", ["neg", "pos"])
    get = {(r["level"], r["metric"], r["outcome"]): r["value"] for r in rows}
    assert get[("tile", "accuracy", "")] == 0.8 and get[("slide", "accuracy", "")] == 1.0
    assert get[("patient", "auc", "pos")] == 1.0 and len(tables["patient"]) == 2
    lin = pd.DataFrame({"slide": ["a", "b", "c"], "patient": ["p", "q", "r"], "y_true0": [0., 1., 2.],
                        "y_pred0": [0., 1., 3.]})
    rows, _ = evaluate(lin, "linear", ["brs"])
    get = {(r["level"], r["metric"]): r["value"] for r in rows}
    assert get[("tile", "mse")] == pytest.approx(1 / 3) and get[("slide", "r")] > 0.9


def test_hp_validation():
    hp = complete_hp({"loss": "mean_squared_error", "epochs": 2})
    assert hp["training_balance"] == "patient" and hp["epochs"] == [2]
    with pytest.raises(UserError, match="category"):
        complete_hp({"loss": "mean_squared_error", "training_balance": "category"})
    with pytest.raises(UserError, match="unknown hp"):
        complete_hp({"modell": "xception"})
