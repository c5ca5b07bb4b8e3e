"""Progress of long work: a tqdm bar on a terminal, otherwise a line in the log now and then (and at the end)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator

from tqdm import tqdm

log = logging.getLogger("synthhist")


class Progress:
    """progress(total=..., desc=..., unit=...): .update(n) as work is done; use as a context manager or iterate."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", every_s: float = 30.0, terminal: bool | None = None):
        self.iterable, self.desc, self.unit, self.every_s = iterable, desc, unit, every_s
        self.total = total if total is not None or iterable is None else _len(iterable)
        self.n, self.t0 = 0, time.perf_counter()
        self.last = self.t0
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = tqdm(total=self.total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True) if terminal else None

    def update(self, n: int = 1) -> None:
        """Count n more units done."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            log.info(self._line(now))

    def close(self, finished: bool = True) -> None:
        """Close the bar, or log the final count."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.n:
            log.info(self._line(time.perf_counter()) + ("" if finished else " (stopped)"))
            self.n = 0

    def _line(self, now: float) -> str:
        s = now - self.t0
        of = f"/{self.total}" if self.total is not None else ""
        rate = self.n / s if s > 0 else 0.0
        eta = f", {(self.total - self.n) / rate:.0f} s left" if self.total and rate and self.n < self.total else ""
        return f"{self.desc}: {self.n}{of} {self.unit}s in {s:.0f} s ({rate:.3g} {self.unit}/s{eta})"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(finished=exc_type is None)

    def __iter__(self) -> Iterator:
        with self:
            for item in self.iterable:
                yield item
                self.update(1)


def _len(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None
