"""Prediction along class blending for concordant seeds: per-seed min-max normalisation and the mean +/- SD plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthhist.errors import UserError
from synthhist.explain.interpolate import blend_predictions
from synthhist.fileio import atomic_open
from synthhist.progress import Progress


FIGURE_SUFFIXES = ("png", "jpg", "jpeg", "pdf", "svg")


def output_paths(out: str | Path) -> tuple[Path, Path, Path, Path]:
    """(figure, concordance CSV, curves CSV, log) of --out: a path with an image suffix is the figure itself,
    its CSVs beside it (<stem>_concordance.csv, <stem>_curves.csv); anything else is a folder."""
    out = Path(out)
    if out.suffix.lower().lstrip(".") in FIGURE_SUFFIXES:
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; name the figure (e.g. {out}/probability.png) or another folder")
        d, stem = out.parent, out.stem
        return out, d / f"{stem}_concordance.csv", d / f"{stem}_curves.csv", d / f"{stem}.log"
    return (out / "interpolation_probability.png", out / "concordance.csv", out / "curves.csv", out / "log.txt")


def minmax(p: np.ndarray) -> np.ndarray:
    """(p - min) / (max - min) of one curve; a flat curve (max == min) becomes all zeros."""
    p = np.asarray(p, np.float64)
    span = p.max() - p.min()
    return (p - p.min()) / span if span > 0 else np.zeros_like(p)


def normalise_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Add pred_norm: the min-max normalised pred of every seed's curve (rows: seed, step, t, pred)."""
    out = curves.copy()
    out["pred_norm"] = out.groupby("seed")["pred"].transform(lambda p: minmax(p.to_numpy()))
    return out


def concordant_curves(G, search: pd.DataFrame, start: int, end: int, steps: int, bridge, clf, outcome_idx: int,
                      **kwargs) -> pd.DataFrame:
    """Prediction curves along class blending of the strong/weak seeds of a concordance search, normalised.

    Rows: seed, concordance, step, t, pred, pred_norm. Raises UserError when no seed is concordant.
    kwargs: psi, noise_mode, batch, device, timings (as blend_predictions).
    """
    keep = search[search["concordance"].isin(["strong", "weak"])]
    if keep.empty:
        raise UserError(f"no strong or weak seed among the {len(search)} seeds searched: no curve to plot "
                        "(try more seeds, other thresholds or other classes)")
    kind = dict(zip(keep["seed"].astype(int), keep["concordance"]))
    rows = []
    for seed, curve, _ in Progress(blend_predictions(G, list(kind), start, end, steps, bridge, clf, **kwargs),
                                   total=len(kind), unit="seed", desc="blending"):
        rows.append(pd.DataFrame({"seed": seed, "concordance": kind[seed], "step": curve["step"], "t": curve["t"],
                                  "pred": curve[f"pred{outcome_idx}"]}))
    return normalise_curves(pd.concat(rows, ignore_index=True))


def plot_curves(curves: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Mean +/- SD of pred_norm against blending step, as PNG (or .jpg/.pdf/.svg by suffix), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = curves.pivot(index="step", columns="seed", values="pred_norm")  # [steps, n_seeds]
    mean, sd = wide.mean(axis=1), wide.std(axis=1, ddof=1).fillna(0)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.fill_between(wide.index, mean - sd, mean + sd, alpha=0.3, label="SD")
    ax.plot(wide.index, mean, lw=2, label=f"mean ({wide.shape[1]} seeds)")
    ax.set_xlabel("blending step")
    ax.set_ylabel("normalised prediction")
    ax.set_title(title)
    ax.legend(loc="best")
    fig.tight_layout()
    fmt = Path(path).suffix.lower().lstrip(".")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt if fmt in FIGURE_SUFFIXES else "png")
    plt.close(fig)
