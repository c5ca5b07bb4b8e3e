"""Seed lists as the original tools accept them: '0-100', '1,5,9', '1,4-6', or a file with one seed a line."""

from __future__ import annotations

import os
import re

from synthhist.errors import UserError

MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32 - 1]
MAX_SEEDS = 1_000_000  # seeds in one list (a longer run: split it into several)
MAX_SEED_FILE = 16 * 2**20  # bytes


def parse_seeds(spec: str | int | list[int]) -> list[int]:
    """Parse a seed list ('a-b' ranges inclusive, comma lists, or a path to a file of seeds)."""
    if isinstance(spec, int):
        ranges = [range(spec, spec + 1)]
    elif isinstance(spec, (list, tuple)):
        ranges = [range(s, s + 1) if isinstance(s, int) else s for s in spec]
    else:
        text = str(spec).strip()
        if text and os.path.isfile(text):
            tokens = [t.strip() for line in _read_text(text).splitlines() for t in line.split(",")]
            tokens = [t for t in tokens if t and not t.startswith("#")]
            if not tokens:
                raise UserError(f"seed file {text} holds no seeds")
            ranges = _parse_tokens(tokens, source=f"seed file {text}")
        else:
            ranges = _parse_tokens(text.split(","), source=f"seed list {text!r}")
    for r in ranges:
        if not isinstance(r, range) or not r or r.start < 0 or r.stop - 1 > MAX_SEED:
            bad = r if not isinstance(r, range) else (r.start if r.start < 0 or not r else r.stop - 1)
            raise UserError(f"seed {bad} is out of range (0 to {MAX_SEED})")
    n = sum(len(r) for r in ranges)  # counted before any list is built
    if n > MAX_SEEDS:
        raise UserError(f"{n} seeds is more than the limit of {MAX_SEEDS} in one run: split the seed range")
    if not n:
        raise UserError("the seed list is empty")
    return [s for r in ranges for s in r]


def _read_text(path: str) -> str:
    """A seed file's text; binary or oversized files are refused."""
    if os.path.getsize(path) > MAX_SEED_FILE:
        raise UserError(f"seed file {path} is larger than {MAX_SEED_FILE >> 20} MiB")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise UserError(f"seed file {path} is not a text file (expected one seed or range a line)")
    return text


def _parse_tokens(tokens: list[str], source: str) -> list[range]:
    out: list[range] = []
    for tok in tokens:
        tok = tok.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", tok)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise UserError(f"bad range {tok!r} in {source}: end is before start")
            if b > MAX_SEED:
                raise UserError(f"seed {b} is out of range (0 to {MAX_SEED})")
            out.append(range(a, b + 1))
        elif re.fullmatch(r"\d+", tok):
            out.append(range(int(tok), int(tok) + 1))
        else:
            raise UserError(f"malformed seed {tok!r} in {source} (expected e.g. 0-100, 1,5,9 or a file)")
    return out
