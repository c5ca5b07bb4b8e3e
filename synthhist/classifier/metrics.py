"""Validation metrics at tile, slide and patient level: AUC + accuracy (categorical), MSE + Pearson R (linear)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of binary y_true (0/1) vs score (Mann-Whitney U with tie ranks); nan if one class."""
    y_true = np.asarray(y_true, bool)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; nan when either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def level_predictions(tiles: pd.DataFrame, level: str, pred_cols: list[str], true_cols: list[str]) -> pd.DataFrame:
    """Average tile predictions per 'slide' or 'patient' (slideflow reduce_method='average')."""
    return tiles.groupby(level, sort=True)[true_cols + pred_cols].mean().reset_index()


def evaluate(tiles: pd.DataFrame, model_type: str, labels: list[str]) -> tuple[list[dict], dict[str, pd.DataFrame]]:
    """Tile-level predictions (columns slide, patient, y_true*, y_pred*) -> (metric rows, per-level tables)."""
    pred_cols = [c for c in tiles.columns if c.startswith("y_pred")]
    true_cols = [c for c in tiles.columns if c.startswith("y_true")]
    tables = {"tile": tiles, "slide": level_predictions(tiles, "slide", pred_cols, true_cols),
              "patient": level_predictions(tiles, "patient", pred_cols, true_cols)}
    rows = []
    for level, df in tables.items():
        if model_type == "categorical":
            y = df["y_true"].to_numpy().round().astype(int)
            p = df[pred_cols].to_numpy()
            rows.append({"level": level, "metric": "accuracy", "outcome": "", "value": float((p.argmax(1) == y).mean())})
            for i, name in enumerate(labels):
                rows.append({"level": level, "metric": "auc", "outcome": name, "value": roc_auc(y == i, p[:, i])})
        else:
            for i, name in enumerate(labels):
                t, p = df[true_cols[i]].to_numpy(), df[pred_cols[i]].to_numpy()
                rows.append({"level": level, "metric": "mse", "outcome": name, "value": float(np.mean((t - p) ** 2))})
                rows.append({"level": level, "metric": "r", "outcome": name, "value": pearson_r(t, p)})
    return rows, tables
