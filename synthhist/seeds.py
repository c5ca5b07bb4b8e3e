"""Seed lists as the original tools accept them: '0-100', '1,5,9', '1,4-6', or a file with one seed a line."""

from __future__ import annotations

import os
import re

from synthhist.errors import UserError

MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32 - 1]


def parse_seeds(spec: str | int | list[int]) -> list[int]:
    """Parse a seed list ('a-b' ranges inclusive, comma lists, or a path to a file of seeds)."""
    if isinstance(spec, int):
        items = [spec]
    elif isinstance(spec, (list, tuple)):
        items = list(spec)
    else:
        text = str(spec).strip()
        if text and os.path.isfile(text):
            with open(text) as f:
                tokens = [t.strip() for line in f for t in line.split(",")]
            tokens = [t for t in tokens if t and not t.startswith("#")]
            if not tokens:
                raise UserError(f"seed file {text} holds no seeds")
            items = _parse_tokens(tokens, source=f"seed file {text}")
        else:
            items = _parse_tokens(text.split(","), source=f"seed list {text!r}")
    for s in items:
        if not isinstance(s, int) or s < 0 or s > MAX_SEED:
            raise UserError(f"seed {s} is out of range (0 to {MAX_SEED})")
    if not items:
        raise UserError("the seed list is empty")
    return items


def _parse_tokens(tokens: list[str], source: str) -> list[int]:
    out: list[int] = []
    for tok in tokens:
        tok = tok.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", tok)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise UserError(f"bad range {tok!r} in {source}: end is before start")
            if b > MAX_SEED:
                raise UserError(f"seed {b} is out of range (0 to {MAX_SEED})")
            out.extend(range(a, b + 1))
        elif re.fullmatch(r"\d+", tok):
            out.append(int(tok))
        else:
            raise UserError(f"malformed seed {tok!r} in {source} (expected e.g. 0-100, 1,5,9 or a file)")
    return out
