"""Validation splits by patient (k-fold, fixed fraction, none), seeded and cached in splits.json (spec 4.6)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from synthhist.errors import UserError
from synthhist.fileio import atomic_write_json

log = logging.getLogger("synthhist")
STRATEGIES = ("k-fold", "fixed", "none")


def patients_table(slide_patient: dict[str, str], slide_label: dict[str, object]) -> dict[str, dict]:
    """{patient: {outcome_label, slides}}; a patient whose slides disagree on the label is an error."""
    table: dict[str, dict] = {}
    for slide in sorted(slide_label):
        pt = slide_patient[slide]
        entry = table.setdefault(pt, {"outcome_label": slide_label[slide], "slides": []})
        if entry["outcome_label"] != slide_label[slide]:
            raise UserError(f"patient {pt} has slides with different outcome labels "
                            f"({entry['outcome_label']} vs {slide_label[slide]}); fix the annotations")
        entry["slides"].append(slide)
    return table


def chunk(items: list, k: int) -> list[list]:
    """Split into k near-equal consecutive chunks; the first len%k chunks get one extra item."""
    n, extra = divmod(len(items), k)
    out, start = [], 0
    for i in range(k):
        size = n + (1 if i < extra else 0)
        out.append(items[start:start + size])
        start += size
    return out


def split_patients(patients: dict[str, dict], strategy: str, k_fold: int, fraction: float,
                   categorical: bool, seed: int) -> list[list[str]]:
    """Validation patient lists: k lists for k-fold, one for fixed; balanced per label when categorical."""
    rng = random.Random(seed)
    groups: dict[object, list[str]] = {}
    for pt in sorted(patients):
        groups.setdefault(patients[pt]["outcome_label"] if categorical else None, []).append(pt)
    folds: list[list[str]] = [[] for _ in range(k_fold if strategy == "k-fold" else 1)]
    for label in sorted(groups, key=str):
        pts = groups[label]
        rng.shuffle(pts)
        if strategy == "k-fold":
            for fold, part in zip(folds, chunk(pts, k_fold)):
                fold.extend(part)
        else:
            folds[0].extend(pts[:round(len(pts) * fraction)])
    return folds


def _load(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not readable JSON ({e}); delete it to make new splits") from None


def get_splits(path: Path, patients: dict[str, dict], strategy: str, k_fold: int, fraction: float,
               categorical: bool, seed: int) -> list[list[str]]:
    """Validation slide lists (one per fold), reused from splits.json when strategy, k/fraction, patients and
    labels match, else made with `seed` and appended there."""
    if strategy not in STRATEGIES:
        raise UserError(f"validation strategy {strategy!r}: use one of {STRATEGIES}")
    if strategy == "none":
        return []
    if strategy == "k-fold" and not 2 <= k_fold <= len(patients):
        raise UserError(f"k-fold with k={k_fold} needs 2 <= k <= number of patients ({len(patients)})")
    if strategy == "fixed" and not 0 < fraction < 1:
        raise UserError(f"validation fraction {fraction} must be between 0 and 1")
    key = {"strategy": strategy, "k_fold": k_fold if strategy == "k-fold" else None,
           "val_fraction": fraction if strategy == "fixed" else None}
    saved = _load(path) if path.exists() else []
    want = {pt: {"outcome_label": v["outcome_label"], "slides": sorted(v["slides"])} for pt, v in patients.items()}
    for entry in saved:
        if (entry.get("strategy") == strategy and entry.get("k_fold", k_fold) == key["k_fold"]
                and entry.get("val_fraction", fraction) == key["val_fraction"]
                and entry.get("patients") == want and entry.get("seed", seed) == seed):
            log.info(f"Using validation split from {path}")
            return [sorted(v) for v in entry["tfrecords"].values()]
    folds = split_patients(patients, strategy, k_fold, fraction, categorical, seed)
    slides = [sorted(s for pt in fold for s in patients[pt]["slides"]) for fold in folds]
    if any(not s for s in slides):
        raise UserError(f"validation split {strategy} leaves a fold without slides: too few patients "
                        f"({len(patients)}) for k={k_fold} / fraction={fraction}")
    names = [f"k-fold-{i + 1}" for i in range(len(slides))] if strategy == "k-fold" else ["fixed"]
    saved.append({**key, "seed": seed, "patients": want, "tfrecords": dict(zip(names, slides))})
    atomic_write_json(path, saved)
    log.info(f"Saved new validation split ({strategy}, seed {seed}) to {path}")
    return slides
