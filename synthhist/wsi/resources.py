"""Experiment resources (annotations CSV, ROI archive): fetch by URL or copy from a path, sha256-verified;
ROI archives (tar.gz of <slide>.csv) are unpacked safely."""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from synthhist.config import Resource
from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_write_bytes
from synthhist.wsi.download import DownloadError, SizeMismatch, download

LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
ROI_COLUMNS = {"roi_name", "x_base", "y_base"}
EXTRACTED_MARK = ".extracted"
MAX_ROI_BYTES = 64 << 20      # one ROI CSV (a polygon of a million vertices is ~30 MB)
MAX_ROI_MEMBERS = 100_000     # members of one ROI archive (TCGA cohorts have about a thousand slides)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_resource(res: Resource, dest: str | Path, what: str) -> Path:
    """Make dest hold the resource (download or copy), verified against its sha256; returns dest."""
    dest = Path(dest)
    if dest.is_file() and (sha256_file(dest) == res.sha256 if res.sha256 else _same_bytes(res.path, dest)):
        return dest
    log = logging.getLogger("synthhist")
    if res.url is not None:
        log.info(f"downloading {what} {res.url}")
        with tqdm(total=res.size, unit="B", unit_scale=True, desc=res.filename, leave=False) as bar:
            try:
                download(res.url, dest, size=res.size, progress=bar.update)
            except DownloadError as e:
                if isinstance(e, SizeMismatch) and e.head.startswith(LFS_MAGIC):
                    raise UserError(_lfs_message(what, res.url)) from None
                raise UserError(f"{what}: {e}") from None
    else:
        _check_not_lfs(res.path, what, res.path)
        with open(res.path, "rb") as src, atomic_open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    try:
        _check_not_lfs(dest, what, res.url or res.path)
        got = res.sha256 and sha256_file(dest)
        if got != res.sha256:
            raise UserError(f"{what}: sha256 mismatch for {res.url or res.path} (expected {res.sha256}, got {got})")
    except UserError:
        dest.unlink()
        raise
    return dest


def extract_rois(archive: str | Path, roi_dir: str | Path) -> int:
    """Unpack the <slide>.csv members of a ROI tar archive flat into roi_dir (once per archive); returns the count.

    Refused with one line: absolute or '..' member paths, two members of the same slide (a/S1.csv and
    b/S1.csv), a member over MAX_ROI_BYTES, an archive of over MAX_ROI_MEMBERS members. Links are skipped.
    """
    archive, roi_dir = Path(archive), Path(roi_dir)
    digest = sha256_file(archive)
    mark = roi_dir / EXTRACTED_MARK
    if mark.is_file() and mark.read_text().split()[:1] == [digest]:
        return int(mark.read_text().split()[1])
    _check_not_lfs(archive, "ROI archive", archive)
    where = f"ROI archive {archive.name}"
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _roi_members(tar, where)
            for name, member in members.items():   # all checked before anything is written
                data = tar.extractfile(member).read(MAX_ROI_BYTES + 1)
                _check_roi_csv(data, f"{where}: {member.name}")
                atomic_write_bytes(roi_dir / name, data)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{where} is not a readable tar archive ({e}); delete it and rerun") from None
    if not members:
        raise UserError(f"{where} holds no <slide>.csv files")
    atomic_write_bytes(mark, f"{digest} {len(members)}\n".encode())
    return len(members)


def _roi_members(tar: tarfile.TarFile, where: str) -> dict[str, tarfile.TarInfo]:
    """<slide>.csv file name -> its member, every member checked (paths, links, duplicates, sizes, count)."""
    members: dict[str, tarfile.TarInfo] = {}
    for count, member in enumerate(tar, start=1):
        if count > MAX_ROI_MEMBERS:
            raise UserError(f"{where} has more than {MAX_ROI_MEMBERS} members; not a ROI archive")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise UserError(f"{where}: unsafe member path {member.name!r}")
        if name.suffix.lower() != ".csv" or name.name.startswith("."):
            continue                                # folders and stray files are never written
        if not member.isfile():                     # links, devices, fifos: never written nor followed
            kind = f"a link to {member.linkname!r}" if member.linkname else "not a regular file"
            logging.getLogger("synthhist").warning(f"{where}: member {member.name!r} is {kind}; skipped")
            continue
        if member.size > MAX_ROI_BYTES:
            raise UserError(f"{where}: member {member.name!r} is {member.size} bytes, over the "
                            f"{MAX_ROI_BYTES >> 20} MiB a ROI CSV may have")
        if name.name in members:
            raise UserError(f"{where}: members {members[name.name].name!r} and {member.name!r} are both "
                            f"ROIs of slide {name.stem} (ROI files are unpacked flat: one per slide)")
        members[name.name] = member
    return members


def _check_roi_csv(data: bytes, where: str) -> None:
    """Raise UserError unless data starts with a header holding ROI_name, X_base, Y_base."""
    header = io.BytesIO(data).readline().decode("utf-8", "replace").strip().lower()
    columns = {c.strip().strip('"') for c in header.split(",")}
    if not ROI_COLUMNS <= columns:
        raise UserError(f"{where}: not a ROI CSV (header must contain ROI_name, X_base, Y_base)")


def _check_not_lfs(path: Path, what: str, source: object) -> None:
    """Raise UserError if path is a Git LFS pointer file instead of the real content."""
    with open(path, "rb") as f:
        head = f.read(len(LFS_MAGIC))
    if head == LFS_MAGIC:
        raise UserError(_lfs_message(what, source))


def _lfs_message(what: str, source: object) -> str:
    """The error for a Git LFS pointer served or stored instead of the real file."""
    return (f"{what} from {source} is a Git LFS pointer, not the file itself; "
            "fetch the real file (git lfs pull, or the repository's /raw/ URL)")


def _same_bytes(a: Path | None, b: Path) -> bool:
    """True when a is a file with the same content as b."""
    return a is not None and a.stat().st_size == b.stat().st_size and sha256_file(a) == sha256_file(b)
