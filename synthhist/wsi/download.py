"""Resumable HTTP download: `<dest>.part` grows with HTTP Range requests and becomes `dest` only when complete."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import requests

CHUNK = 1 << 16
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
             requests.exceptions.ContentDecodingError)


class DownloadError(Exception):
    """A download that failed for good (after retries, or on a non-retryable HTTP status)."""


class NotFound(DownloadError):
    """The server answered 404."""


class SizeMismatch(DownloadError):
    """The server sent a complete response of the wrong size; `head` holds its first bytes."""

    def __init__(self, message: str, head: bytes):
        super().__init__(message)
        self.head = head


class _Retry(Exception):
    """A transient problem: try again (resuming)."""


def part_path(dest: Path) -> Path:
    """The partial-download file beside dest."""
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: str | Path, size: int | None = None, session: requests.Session | None = None,
             progress: Callable[[int], None] | None = None, retries: int = 5, backoff: float = 1.0,
             timeout: float = 60) -> Path:
    """Download url to dest, resuming dest.part with Range; retries with exponential backoff; size-checked."""
    dest, log = Path(dest), logging.getLogger("synthhist")
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    session = session or requests.Session()
    progress = progress or (lambda n: None)
    last = "no attempt"
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.info(f"retrying {dest.name} in {delay:g}s ({last})")
            time.sleep(delay)
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        if size is not None and offset == size and size > 0:
            break
        try:
            done = _fetch(url, part, offset, size, session, progress, timeout)
        except _Retry as e:
            last = str(e)
            continue
        except RETRYABLE as e:
            log.debug(f"{url}: {e}")
            last = _reason(e, urlparse(url).netloc)
            continue
        if done:
            break
        last = f"incomplete: {part.stat().st_size if part.exists() else 0} of {size} bytes"
    else:
        raise DownloadError(f"{dest.name}: download failed after {retries + 1} attempts ({last})")
    os.replace(part, dest)
    return dest


def _reason(e: Exception, host: str) -> str:
    """A short reason for a transient network error."""
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-transfer"
    if isinstance(e, requests.Timeout):
        return f"timed out talking to {host}"
    return f"cannot connect to {host}"


def _fetch(url: str, part: Path, offset: int, size: int | None, session: requests.Session,
           progress: Callable[[int], None], timeout: float) -> bool:
    """One request appending to part from offset; True when the file is complete."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as r:
        if r.status_code == 404:
            raise NotFound(f"{url}: not found (HTTP 404)")
        if r.status_code == 416:      # asked past the end: the partial file is wrong, start over
            part.unlink(missing_ok=True)
            progress(-offset)
            raise _Retry(f"{url}: HTTP 416, restarting")
        if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
            raise DownloadError(f"{url}: HTTP {r.status_code}")
        if r.status_code not in (200, 206):
            raise _Retry(f"{url}: HTTP {r.status_code}")
        if r.status_code == 206:
            start = int(r.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
            if start != offset:
                raise _Retry(f"{url}: server resumed at byte {start}, expected {offset}")
        elif offset:                  # server ignored the Range header: start from zero
            progress(-offset)
            offset = 0
        length = r.headers.get("Content-Length")
        served = offset + int(length) if length else None
        expected = size if size is not None else served
        with open(part, "ab" if offset else "wb") as f:
            for chunk in r.iter_content(CHUNK):
                f.write(chunk)
                progress(len(chunk))
    got = part.stat().st_size
    if size is not None and got == served != size:    # a whole, different file: retrying will not help
        with open(part, "rb") as f:
            head = f.read(256)
        part.unlink()
        raise SizeMismatch(f"{url}: the server sent {got} bytes, expected {size}", head)
    if expected is not None and got > expected:
        part.unlink()
        progress(-got)
        raise _Retry(f"{url}: got {got} bytes, more than the expected {expected}")
    return expected is None or got == expected
