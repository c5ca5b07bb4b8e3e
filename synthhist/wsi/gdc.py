"""TCGA slides from the NCI Genomic Data Commons: file-name lookup (files endpoint), resumable download
(data endpoint), MD5 verification with one retry, quarantine, and a list of what is missing."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from tqdm import tqdm

from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_write_json
from synthhist.wsi.download import DownloadError, NotFound, download
from synthhist.wsi.labels import is_plain_name

GDC_URL = "https://api.gdc.cancer.gov"
LOOKUP_BATCH = 200
MANIFEST_COLUMNS = ("id", "filename", "md5", "size", "state")


@dataclass(frozen=True)
class GdcFile:
    """One GDC file record."""

    file_id: str
    file_name: str
    md5sum: str
    file_size: int


@dataclass
class SlideReport:
    """Outcome of fetching/verifying the slides of an experiment (values: slide name lists / name -> reason)."""

    present: list[str] = field(default_factory=list)       # on disk (after this run)
    downloaded: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)      # MD5 checked and equal
    unverified: list[str] = field(default_factory=list)    # on disk, MD5 asked for, but unknown to GDC
    not_found: list[str] = field(default_factory=list)     # GDC has no file of that name
    failed: dict[str, str] = field(default_factory=dict)   # download failed for good
    quarantined: dict[str, str] = field(default_factory=dict)  # MD5 mismatch, file moved away
    absent: list[str] = field(default_factory=list)        # not on disk and not asked to download

    def missing(self) -> dict[str, str]:
        """Every slide of the annotations that is not usable, with the reason."""
        out = {n: "not found at GDC" for n in self.not_found}
        out.update({n: f"download failed: {r}" for n, r in self.failed.items()})
        out.update({n: f"quarantined: {r}" for n, r in self.quarantined.items()})
        out.update({n: "not downloaded (use --download)" for n in self.absent})
        return dict(sorted(out.items()))


def gdc_url() -> str:
    """GDC API base URL: $SYNTHHIST_GDC_URL or the public API."""
    return os.environ.get("SYNTHHIST_GDC_URL", GDC_URL).rstrip("/")


def lookup_files(file_names: list[str], base_url: str | None = None, session: requests.Session | None = None,
                 batch: int = LOOKUP_BATCH) -> dict[str, GdcFile]:
    """Map file names to GDC records via POST /files (filter file_name in [...]); unknown names are absent."""
    base_url, session = base_url or gdc_url(), session or requests.Session()
    found: dict[str, GdcFile] = {}
    names = sorted(set(file_names))
    for i in range(0, len(names), batch):
        chunk = names[i:i + batch]
        body = {"filters": {"op": "in", "content": {"field": "file_name", "value": chunk}},
                "fields": "file_id,file_name,md5sum,file_size", "format": "JSON", "size": str(2 * len(chunk))}
        try:
            r = session.post(f"{base_url}/files", json=body, timeout=60)
            r.raise_for_status()
            hits = r.json()["data"]["hits"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as e:
            raise UserError(f"GDC file lookup failed at {base_url}/files: {e}") from None
        for h in hits:
            rec = GdcFile(h["file_id"], h["file_name"], h["md5sum"], int(h["file_size"]))
            if rec.file_name in found and found[rec.file_name] != rec:
                logging.getLogger("synthhist").warning(f"GDC has several files named {rec.file_name}; using the first")
                continue
            found[rec.file_name] = rec
    return found


def read_manifest(path: str | Path) -> dict[str, GdcFile]:
    """Read a GDC manifest TSV (id, filename, md5, size[, state]) into file name -> record."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["filename"]: GdcFile(row["id"], row["filename"], row["md5"], int(row["size"]))
                for row in csv.DictReader(f, delimiter="\t")}


def write_manifest(path: str | Path, records: dict[str, GdcFile]) -> None:
    """Write records as a GDC manifest TSV (usable with gdc-client)."""
    with atomic_open(path, "w") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(MANIFEST_COLUMNS)
        for r in sorted(records.values(), key=lambda r: r.file_name):
            w.writerow((r.file_id, r.file_name, r.md5sum, r.file_size, "released"))


def md5_file(path: str | Path) -> str:
    """Hex MD5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_slides(slides: list[str], slides_dir: Path, quarantine_dir: Path, manifest_path: Path,
                 md5_cache: Path, download_missing: bool = False, md5: bool = False, workers: int = 2,
                 base_url: str | None = None, ext: str = ".svs", retries: int = 5,
                 backoff: float = 1.0) -> SlideReport:
    """Download missing `<slide><ext>` files from GDC and/or verify MD5s; never skips a slide silently."""
    bad = [n for n in slides if not is_plain_name(n)]
    if bad:
        raise UserError(f"slide name {bad[0]!r} is not a plain file name: refusing to write outside {slides_dir}")
    log = logging.getLogger("synthhist")
    base_url = base_url or gdc_url()
    report = SlideReport()
    on_disk = {n for n in slides if (slides_dir / f"{n}{ext}").is_file()}
    need = [n for n in slides if n not in on_disk] if download_missing else []
    check = sorted(on_disk) if md5 else []
    records = read_manifest(manifest_path)
    unknown = [f"{n}{ext}" for n in set(need) | set(check) if f"{n}{ext}" not in records]
    if unknown:
        log.info(f"looking up {len(unknown)} slide files at {base_url}")
        records.update(lookup_files(unknown, base_url))
        write_manifest(manifest_path, records)
    report.absent = sorted(n for n in slides if n not in on_disk and not download_missing)
    report.not_found = sorted(n for n in need if f"{n}{ext}" not in records)
    report.unverified = sorted(n for n in check if f"{n}{ext}" not in records)
    if report.unverified:
        log.warning(f"{len(report.unverified)} local slides are unknown to GDC, MD5 not checked: "
                    f"{', '.join(report.unverified[:10])}{' ...' if len(report.unverified) > 10 else ''}")

    todo = [n for n in need if f"{n}{ext}" in records]
    total = sum(records[f"{n}{ext}"].file_size for n in todo)
    verified = _read_md5_cache(md5_cache)
    lock = threading.Lock()

    with tqdm(total=total, unit="B", unit_scale=True, desc=f"slides 0/{len(todo)}", disable=not todo) as bar:
        def progress(n: int) -> None:
            with lock:
                bar.update(n)

        def obtain(name: str) -> tuple[str, str, str]:
            """-> (name, downloaded|present|failed|quarantined, detail: 'verified' or the reason)."""
            rec, dest = records[f"{name}{ext}"], slides_dir / f"{name}{ext}"
            url = f"{base_url}/data/{rec.file_id}"
            try:
                if not dest.is_file():
                    download(url, dest, size=rec.file_size, progress=progress, retries=retries, backoff=backoff)
                    status = "downloaded"
                else:
                    status = "present"
                if not md5:
                    return name, status, ""
                cached = verified.get(dest.name)
                stat = dest.stat()
                if cached == [rec.md5sum, stat.st_size, stat.st_mtime_ns]:
                    return name, status, "verified"
                got = md5_file(dest)
                if got != rec.md5sum and download_missing:
                    log.warning(f"{dest.name}: MD5 mismatch (expected {rec.md5sum}, got {got}); downloading again")
                    dest.unlink()
                    progress(-rec.file_size if status == "downloaded" else 0)
                    download(url, dest, size=rec.file_size, progress=progress, retries=retries, backoff=backoff)
                    status, got = "downloaded", md5_file(dest)
                if got != rec.md5sum:
                    quarantine_dir.mkdir(parents=True, exist_ok=True)
                    shutil.move(dest, quarantine_dir / dest.name)
                    return name, "quarantined", f"MD5 {got} != GDC {rec.md5sum}"
                stat = dest.stat()
                with lock:
                    verified[dest.name] = [rec.md5sum, stat.st_size, stat.st_mtime_ns]
                return name, status, "verified"
            except (DownloadError, OSError) as e:
                return name, "failed", "not found at the data endpoint" if isinstance(e, NotFound) else str(e)

        jobs = todo + [n for n in check if n not in report.unverified]
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for name, status, detail in pool.map(obtain, jobs):
                if status == "downloaded":
                    report.downloaded.append(name)
                    done += 1
                    bar.set_description(f"slides {done}/{len(todo)}")
                elif status == "failed":
                    report.failed[name] = detail
                    log.warning(f"{name}: {detail}")
                elif status == "quarantined":
                    report.quarantined[name] = detail
                    log.warning(f"{name}: {detail}; moved to {quarantine_dir}")
                if detail == "verified":
                    report.verified.append(name)
    if md5:
        atomic_write_json(md5_cache, verified)
    report.present = sorted(n for n in slides if (slides_dir / f"{n}{ext}").is_file())
    return report


def _read_md5_cache(path: Path) -> dict[str, list]:
    """Slides already verified: file name -> [md5, size, mtime_ns]."""
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
