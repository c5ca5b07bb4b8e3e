"""Quiz answers on disk (R/<learner>.csv, one row per answer, rewritten atomically) and their summaries."""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path

from synthhist.errors import UserError
from synthhist.fileio import atomic_open

COLUMNS = ["learner", "quiz", "mode", "question", "truth", "answer", "correct", "difficulty", "ms"]
LEARNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_learner(name: str) -> str:
    """The learner name if it is a plain file name (letters, digits, _ . -; no path, no leading dot); else UserError."""
    if not LEARNER.match(name) or ".." in name:
        raise UserError("learner name must be 1-64 letters, digits, '_', '.' or '-' (a plain file name)")
    return name


class Scores:
    """The results folder: appends answer rows, reads them back, summarises them."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def path(self, learner: str) -> Path:
        """R/<learner>.csv."""
        return self.folder / f"{check_learner(learner)}.csv"

    def append(self, row: dict) -> None:
        """Add one answer row to its learner's CSV: the whole file is rewritten to a temp file and renamed."""
        with self._lock:
            path = self.path(row["learner"])
            old = path.read_bytes() if path.exists() else b""
            buf = io.StringIO()
            w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
            if not old:
                w.writeheader()
            w.writerow({c: row[c] for c in COLUMNS})
            with atomic_open(path, "wb") as f:
                f.write(old + buf.getvalue().encode())

    def rows(self, learner: str | None = None, quiz: str | None = None) -> list[dict]:
        """Answer rows of one learner (or all), optionally of one quiz, with typed correct/difficulty/ms."""
        files = [self.path(learner)] if learner else sorted(self.folder.glob("*.csv"))
        out = []
        for p in files:
            if not p.is_file():
                continue
            with open(p, newline="") as f:
                for r in csv.DictReader(f):
                    if quiz is None or r.get("quiz") == quiz:
                        out.append({**r, "correct": r.get("correct") == "1",
                                    "difficulty": float(r.get("difficulty") or 0), "ms": float(r.get("ms") or 0)})
        return out

    def csv_text(self, learner: str | None = None) -> str:
        """All rows (of one learner or the class) as one CSV."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in self.rows(learner):
            w.writerow({**{c: r[c] for c in COLUMNS}, "correct": int(r["correct"])})
        return buf.getvalue()


def _tally(rows: list[dict], key) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in rows:
        k = str(key(r))
        s = out.setdefault(k, {"answered": 0, "correct": 0, "ms": 0.0})
        s["answered"] += 1
        s["correct"] += int(r["correct"])
        s["ms"] += r["ms"]
    for s in out.values():
        s["accuracy"] = s["correct"] / s["answered"]
        s["mean_ms"] = s.pop("ms") / s["answered"]
    return dict(sorted(out.items()))


def summarise(rows: list[dict]) -> dict:
    """answered, correct, accuracy, mean ms, by_class (truth), by_difficulty, by_learner, and by_label (pre/post)."""
    n = len(rows)
    right = sum(int(r["correct"]) for r in rows)
    return {"answered": n, "correct": right, "accuracy": right / n if n else None,
            "mean_ms": sum(r["ms"] for r in rows) / n if n else None,
            "by_class": _tally(rows, lambda r: r["truth"]),
            "by_difficulty": _tally([r for r in rows if r["mode"] == "class"], lambda r: f"{r['difficulty']:.1f}"),
            "by_learner": _tally(rows, lambda r: r["learner"]),
            "by_label": _tally(rows, lambda r: r["quiz"].rsplit("-", 1)[0])}
