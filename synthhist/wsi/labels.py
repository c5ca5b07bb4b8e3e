"""Annotations CSV -> per-slide labels (slideflow 1.3.2 semantics, docs/slideflow.md §1.3 and §4.5)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from synthhist.errors import UserError


def _blank(v: str) -> bool:
    return v.strip() == ""


def read_annotations(path: str | Path) -> pd.DataFrame:
    """Read an annotations CSV as strings (blanks ''); it must have unique headers incl. patient and slide."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"annotations file not found: {path}")
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        df = pd.read_csv(path, dtype=str).fillna("")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, StopIteration) as e:
        raise UserError(f"annotations file {path} is not a readable CSV: {str(e).splitlines()[0] if str(e) else e}") from None
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise UserError(f"annotations file {path} has duplicate column(s): {', '.join(dups)}")
    missing = [c for c in ("patient", "slide") if c not in df.columns]
    if missing:
        raise UserError(f"annotations file {path} lacks column(s) {', '.join(missing)} (has: {', '.join(df.columns)})")
    for row, name in enumerate(df["slide"], start=2):
        if not _blank(name) and not is_plain_name(name):
            raise UserError(f"annotations file {path}, line {row}: slide name {name!r} is not a plain file name "
                            "(no folders: no '/', '\\', ':', '..' or control characters)")
    return df


def is_plain_name(name: str) -> bool:
    """True when name can only ever mean a file inside one folder: no separators, '.', '..' or control chars."""
    return name not in (".", "..") and not any(c in name for c in "/\\:") and name.isprintable()


def outcome_labels(df: pd.DataFrame, outcome: str, linear: bool = False) -> tuple[dict[str, int | float], list[str]]:
    """(slide -> label, class names): categorical = index in the sorted unique values; linear = float.

    Rows with a blank slide or a blank outcome are left out. For linear outcomes class names = [outcome].
    """
    if outcome not in df.columns:
        raise UserError(f"outcome column '{outcome}' not in the annotations (columns: {', '.join(df.columns)})")
    rows = df[[not _blank(s) and not _blank(v) for s, v in zip(df["slide"], df[outcome])]]
    if rows.empty:
        raise UserError(f"no slide has a value for outcome '{outcome}'")
    raw: dict[str, str] = {}
    for slide, value in zip(rows["slide"], rows[outcome]):
        if raw.setdefault(slide, value) != value:
            raise UserError(f"slide {slide} has conflicting '{outcome}' values: '{raw[slide]}' and '{value}'")
    if linear:
        labels: dict[str, int | float] = {}
        for slide, value in raw.items():
            try:
                labels[slide] = float(value)
            except ValueError:
                raise UserError(f"slide {slide}: '{outcome}' value '{value}' is not a number (linear outcome)") from None
        return labels, [outcome]
    class_names = sorted(set(raw.values()))
    return {s: class_names.index(v) for s, v in raw.items()}, class_names


def slides_per_class(labels: dict[str, int], num_classes: int) -> np.ndarray:
    """[num_classes] int64: number of slides of each class."""
    return np.bincount(np.asarray(list(labels.values()), dtype=np.int64), minlength=num_classes)


def category_weights(labels: dict[str, int], slides: list[str] | None = None) -> dict[str, float]:
    """Per-slide sampling weights that draw every class equally, slides within a class equally (sum 1)."""
    slides = list(labels) if slides is None else slides
    counts = slides_per_class({s: labels[s] for s in slides}, max(labels.values()) + 1)
    present = counts[counts > 0]
    prob = {s: present.min() / counts[labels[s]] for s in slides}
    total = sum(prob.values())
    return {s: float(p / total) for s, p in prob.items()}
