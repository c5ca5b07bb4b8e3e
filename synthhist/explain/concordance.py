"""Concordance search (docs/slideflow.md §6.3): does the classifier follow the GAN's class change?

For each seed the classifier predicts the image of the start class and of the end class; with thresholds
(low, mid, high) and strict inequalities:
    strong: pred_start < low and pred_end > high (and pred_start < mid < pred_end)
    weak:   pred_start < mid < pred_end, but not strong
    none:   everything else (ties, the reversed direction, ...)

Default outcome and thresholds when not given (printed by the scripts):
    categorical -> outcome_idx 1 (probability of the second class), thresholds 0.25 / 0.5 / 0.75;
    linear      -> outcome_idx 0; with the outcome's range [lo, hi] (params 'outcome_range' when the
                   classifier records one, else [-1, 1], the thyroid BRS scale of the paper):
                   mid = (lo + hi) / 2, low = mid - (hi - lo) / 4, high = mid + (hi - lo) / 4
                   (-0.5 / 0 / 0.5 for [-1, 1]; 0.25 / 0.5 / 0.75 for [0, 1]).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from synthhist.errors import UserError
from synthhist.explain.bridge import Bridge, Timings, predict_stream
from synthhist.fileio import atomic_open, atomic_write_json
from synthhist.gan.blend import check_conditional, class_blend_ws
from synthhist.gan.latent import z_from_seeds
from synthhist.progress import Progress

CATEGORIES = ("strong", "weak", "none")
COLUMNS = ["seed", "pred_start", "pred_end", "concordance"]
log = logging.getLogger("synthhist")


def concordance(pred_start: np.ndarray, pred_end: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Category per seed ('strong' | 'weak' | 'none') from the start/end predictions [N] (strict inequalities)."""
    low, mid, high = thresholds
    ps, pe = np.asarray(pred_start, np.float64), np.asarray(pred_end, np.float64)
    crosses = (ps < mid) & (pe > mid)
    strong = crosses & (ps < low) & (pe > high)
    return np.where(strong, "strong", np.where(crosses, "weak", "none"))


def default_outcome(clf, outcome_idx: int | None, thresholds: tuple[float | None, float | None, float | None]
                    ) -> tuple[int, tuple[float, float, float]]:
    """Fill in outcome_idx and (low, mid, high) from the classifier type where not given; validate them."""
    linear = clf.model_type == "linear"
    if outcome_idx is None:
        outcome_idx = 0 if linear else 1
    n_out = int(clf.n_outputs)
    if not 0 <= outcome_idx < n_out:
        raise UserError(f"--outcome_idx {outcome_idx} is out of range: the classifier has {n_out} outputs (0 to {n_out - 1})")
    if linear:
        lo, hi = (clf.params or {}).get("outcome_range") or (-1.0, 1.0)
        mid, q = (lo + hi) / 2, (hi - lo) / 4
        default = (mid - q, mid, mid + q)
    else:
        default = (0.25, 0.5, 0.75)
    low, mid, high = (d if v is None else float(v) for v, d in zip(thresholds, default))
    if not low <= mid <= high:
        raise UserError(f"thresholds must satisfy low <= mid <= high (got {low:g}, {mid:g}, {high:g})")
    lo, hi = output_range(clf)
    outside = [f"{name} {v:g}" for name, v in zip(("low", "mid", "high"), (low, mid, high)) if not lo <= v <= hi]
    if outside:
        what = "probabilities" if not linear else "the recorded outcome_range"
        log.warning(f"warning: threshold {', '.join(outside)} outside the classifier's output range [{lo:g}, {hi:g}] "
                    f"({what}): no prediction can cross it")
    return outcome_idx, (low, mid, high)


def output_range(clf) -> tuple[float, float]:
    """Range of the classifier's outputs: [0, 1] for probabilities, params outcome_range (else unbounded) if linear."""
    if clf.model_type != "linear":
        return 0.0, 1.0
    r = (clf.params or {}).get("outcome_range")
    return (float(r[0]), float(r[1])) if r else (-np.inf, np.inf)


def class_renderer(G, start: int, end: int, psi: float, noise_mode: str, device: torch.device
                   ) -> Callable[[list[int]], torch.Tensor]:
    """render(seeds) -> images [2N, 3, R, R]: the N start-class images, then the N end-class images."""
    check_conditional(G, start, end)

    def render(seeds: list[int]) -> torch.Tensor:
        z = z_from_seeds(seeds, G.z_dim, device)
        return torch.cat([G.synthesis(class_blend_ws(G, z, start, end, t, psi), noise_mode=noise_mode)
                          for t in (0.0, 1.0)])
    return render


def seed_search(G, seeds: list[int], start: int, end: int, bridge: Bridge, clf, outcome_idx: int,
                thresholds: tuple[float, float, float], batch: int = 32, psi: float = 1, noise_mode: str = "const",
                device: torch.device | str = "cpu", timings: Timings | None = None,
                on_batch: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """Predict start/end-class images of every seed and categorise: DataFrame seed, pred_start, pred_end, concordance."""
    render = class_renderer(G, start, end, psi, noise_mode, torch.device(device))
    chunks = [seeds[i:i + batch] for i in range(0, len(seeds), batch)]
    frames = []
    with Progress(total=len(seeds), unit="seed", desc="concordance") as bar:
        for chunk, preds, _ in predict_stream(chunks, render, bridge, clf, timings=timings):
            n = len(chunk)
            ps, pe = preds[:n, outcome_idx].astype(np.float64), preds[n:, outcome_idx].astype(np.float64)
            df = pd.DataFrame({"seed": chunk, "pred_start": ps, "pred_end": pe,
                               "concordance": concordance(ps, pe, thresholds)})
            if on_batch is not None:
                on_batch(df)
            frames.append(df)
            bar.update(n)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def percentages(df: pd.DataFrame) -> dict[str, float]:
    """Share of each category among the seeds actually run, in percent."""
    n = max(len(df), 1)
    return {k: 100.0 * int((df["concordance"] == k).sum()) / n for k in CATEGORIES}


def _read_partial(path: Path) -> pd.DataFrame:
    """Rows of a partial search CSV that are complete (a run killed mid-write leaves a torn last row: dropped)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip", engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return pd.DataFrame(columns=COLUMNS)
    if list(df.columns) != COLUMNS:
        return pd.DataFrame(columns=COLUMNS)
    seed = pd.to_numeric(df["seed"], errors="coerce")
    ps, pe = pd.to_numeric(df["pred_start"], errors="coerce"), pd.to_numeric(df["pred_end"], errors="coerce")
    ok = seed.notna() & ps.notna() & pe.notna() & df["concordance"].isin(CATEGORIES) & (seed == seed.round())
    if (~ok).any():
        log.info(f"{int((~ok).sum())} incomplete row(s) in {path} dropped (a run was interrupted while writing)")
    out = pd.DataFrame({"seed": seed[ok].astype(np.int64), "pred_start": ps[ok], "pred_end": pe[ok],
                        "concordance": df["concordance"][ok]})
    return out.drop_duplicates("seed").reset_index(drop=True)


def resumable_seed_search(out: Path, settings: dict, seeds: list[int], **kwargs) -> pd.DataFrame:
    """seed_search that appends finished batches to <out>.partial.csv and, rerun with the same settings, skips them.

    The final CSV is written atomically; the partial files are removed on success.
    """
    seeds = list(dict.fromkeys(seeds))
    partial, meta = out.with_name(out.name + ".partial.csv"), out.with_name(out.name + ".partial.json")
    done = pd.DataFrame(columns=COLUMNS)
    if partial.exists() and meta.exists() and json.loads(meta.read_text()) == settings:
        done = _read_partial(partial)
        log.info(f"resuming: {len(done)} seeds already done in {partial}")
        with atomic_open(partial, "w") as f:  # rewritten without a torn last row, so appends start on a new line
            done.to_csv(f, index=False)
    else:
        atomic_write_json(meta, settings)
        with atomic_open(partial, "w") as f:
            f.write(",".join(COLUMNS) + "\n")
    have = set(done["seed"].astype(int))
    todo = [s for s in seeds if s not in have]

    def append(df: pd.DataFrame) -> None:
        with open(partial, "a") as f:
            df.to_csv(f, header=False, index=False)

    new = seed_search(seeds=todo, on_batch=append, **kwargs)
    df = pd.concat([d for d in (done, new) if len(d)], ignore_index=True) if len(done) or len(new) else new
    df = df.set_index("seed").loc[seeds].reset_index()[COLUMNS]  # the order of the seed list
    with atomic_open(out, "w") as f:
        df.to_csv(f, index=False)
    partial.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)
    return df
