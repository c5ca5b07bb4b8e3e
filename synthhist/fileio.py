"""Atomic file writing: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

STALE_TMP_S = 300  # temp files untouched this long are left over from a killed run


def _temp_beside(path: Path, suffix: str = "") -> tuple[int, str]:
    """mkstemp next to path, named .<name>.XXXX.tmp<suffix>, with the permissions a normal file gets (umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the final file the usual permissions
    return fd, tmp


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp file name next to path (same suffix), for writers that open files by name; renamed to path on success."""
    path = Path(path)
    fd, tmp = _temp_beside(path, path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temps(folder: str | Path, older_than_s: float = STALE_TMP_S) -> int:
    """Delete temp files of atomic writes in folder left by a killed run (untouched for older_than_s); count."""
    folder, n = Path(folder), 0
    if not folder.is_dir():
        return 0
    now = time.time()
    for p in folder.glob(".*.tmp*"):
        with contextlib.suppress(OSError):
            if p.is_file() and now - p.stat().st_mtime > older_than_s:
                p.unlink()
                n += 1
    return n


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file next to path; on success it is fsynced and renamed to path, on error removed."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to path atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | Path, obj: object) -> None:
    """Write obj as indented JSON to path atomically."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def next_run_dir(parent: str | Path, name: str) -> Path:
    """Return parent/NNNNN-name with NNNNN one more than the largest numbered folder there (not created)."""
    parent = Path(parent)
    ids = [int(p.name.split("-")[0]) for p in parent.glob("*") if p.is_dir() and p.name.split("-")[0].isdigit()] if parent.exists() else []
    return parent / f"{max(ids, default=-1) + 1:05d}-{name}"
