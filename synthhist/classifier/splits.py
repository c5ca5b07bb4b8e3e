"""Validation splits by patient (docs/slideflow.md §4.6): k-fold (balanced per label), k-fold-preserved-site (each
tissue source site in one fold), fixed fraction, bootstrap (a fresh random fraction), none; seeded, and cached in
splits.json except bootstrap, which slideflow draws anew for every run."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

from synthhist.errors import UserError
from synthhist.fileio import atomic_write_json

log = logging.getLogger("synthhist")
VALIDATION_STRATEGIES = ("k-fold", "k-fold-preserved-site", "fixed", "bootstrap", "none")
K_FOLD_STRATEGIES = ("k-fold", "k-fold-preserved-site")
_TCGA = re.compile(r"^TCGA-([A-Z0-9]{2})-", re.IGNORECASE)


def tcga_site(name: str) -> str | None:
    """TCGA tissue source site of a TCGA slide or patient name ('TCGA-A2-A04P-...' -> 'A2'), else None."""
    m = _TCGA.match(name)
    return m.group(1).upper() if m else None


def patients_table(slide_patient: dict[str, str], slide_label: dict[str, object],
                   slide_site: dict[str, str | None] | None = None) -> dict[str, dict]:
    """{patient: {outcome_label, slides[, site]}}; a patient whose slides disagree on the label or site is an
    error."""
    table: dict[str, dict] = {}
    for slide in sorted(slide_label):
        pt = slide_patient[slide]
        entry = table.setdefault(pt, {"outcome_label": slide_label[slide], "slides": []})
        if entry["outcome_label"] != slide_label[slide]:
            raise UserError(f"patient {pt} has slides with different outcome labels "
                            f"({entry['outcome_label']} vs {slide_label[slide]}); fix the annotations")
        if slide_site is not None:
            site = entry.setdefault("site", slide_site.get(slide))
            if site != slide_site.get(slide):
                raise UserError(f"patient {pt} has slides from different sites ({site} vs {slide_site.get(slide)})")
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


def split_sites(patients: dict[str, dict], k: int, categorical: bool, rng: random.Random) -> list[list[str]]:
    """k patient lists, each site's patients all in one list, label counts (patient counts when not categorical)
    close to 1/k of each label's total:
    sites largest first go to the fold where the squared gap to those targets grows least (slideflow solves the
    same assignment with an integer program)."""
    sites: dict[object, list[str]] = {}
    for pt in sorted(patients):
        site = patients[pt].get("site")
        if site is None:
            raise UserError(f"k-fold-preserved-site: no site for patient {pt}; add a 'site' column to the "
                            "annotations (or use TCGA slide names, TCGA-<site>-...)")
        sites.setdefault(site, []).append(pt)
    if len(sites) < k:
        raise UserError(f"k-fold-preserved-site with k={k} needs at least {k} sites (found {len(sites)})")
    label = {pt: str(p["outcome_label"]) if categorical else "" for pt, p in patients.items()}
    labels = sorted(set(label.values()))
    total = {lab: sum(v == lab for v in label.values()) for lab in labels}
    order = sorted(sites, key=str)
    rng.shuffle(order)
    order.sort(key=lambda s: -len(sites[s]))                                  # stable: ties stay shuffled
    folds: list[list[str]] = [[] for _ in range(k)]
    counts = [{lab: 0 for lab in labels} for _ in range(k)]
    for done, site in enumerate(order):
        n_left = len(order) - done
        empty = [i for i in range(k) if not folds[i]]
        choices = empty if len(empty) >= n_left else range(k)                 # no fold may stay empty
        add = {lab: sum(label[pt] == lab for pt in sites[site]) for lab in labels}

        def growth(i: int) -> float:
            return sum((counts[i][lab] + add[lab] - total[lab] / k) ** 2 - (counts[i][lab] - total[lab] / k) ** 2
                       for lab in labels)
        best = min(choices, key=lambda i: (growth(i), len(folds[i])))
        folds[best] += sites[site]
        counts[best] = {lab: counts[best][lab] + add[lab] for lab in labels}
    return folds


def split_patients(patients: dict[str, dict], strategy: str, k_fold: int, fraction: float,
                   categorical: bool, seed: int) -> list[list[str]]:
    """Validation patient lists: k lists for the k-fold strategies, one for fixed and bootstrap; balanced per label
    when categorical (bootstrap: a plain random fraction, as slideflow)."""
    rng = random.Random(seed)
    if strategy == "k-fold-preserved-site":
        return split_sites(patients, k_fold, categorical, rng)
    if strategy == "bootstrap":
        pts = sorted(patients)
        rng.shuffle(pts)
        return [pts[:int(fraction * len(pts))]]
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
    if strategy not in VALIDATION_STRATEGIES:
        raise UserError(f"validation strategy {strategy!r}: use one of {VALIDATION_STRATEGIES}")
    if strategy == "none":
        return []
    if strategy in K_FOLD_STRATEGIES and not 2 <= k_fold <= len(patients):
        raise UserError(f"{strategy} with k={k_fold} needs 2 <= k <= number of patients ({len(patients)})")
    if strategy in ("fixed", "bootstrap") and not 0 < fraction < 1:
        raise UserError(f"validation fraction {fraction} must be between 0 and 1")
    if strategy == "bootstrap":
        folds = split_patients(patients, strategy, k_fold, fraction, categorical, seed)
        if not folds[0] or len(folds[0]) == len(patients):
            raise UserError(f"bootstrap validation with fraction {fraction} of {len(patients)} patients leaves "
                            "the validation or the training set empty")
        log.info(f"Bootstrap validation: {len(folds[0])} of {len(patients)} patients at random (seed {seed})")
        return [sorted(s for pt in folds[0] for s in patients[pt]["slides"])]
    key = {"strategy": strategy, "k_fold": k_fold if strategy in K_FOLD_STRATEGIES else None,
           "val_fraction": fraction if strategy == "fixed" else None}
    saved = _load(path) if path.exists() else []
    want = {pt: {"outcome_label": v["outcome_label"], "slides": sorted(v["slides"]),
                 **({"site": v["site"]} if strategy == "k-fold-preserved-site" else {})} for pt, v in patients.items()}
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
    names = [f"k-fold-{i + 1}" for i in range(len(slides))] if strategy in K_FOLD_STRATEGIES else ["fixed"]
    saved.append({**key, "seed": seed, "patients": want, "tfrecords": dict(zip(names, slides))})
    atomic_write_json(path, saved)
    log.info(f"Saved new validation split ({strategy}, seed {seed}) to {path}")
    return slides
