"""Real tiles for the metrics (a folder of TFRecords or of images), and their cached features.

Features of the real tiles depend only on the data, the extractor and the options, so they are computed once
and kept in the cache (inception.cache_dir()/reals), keyed by every file's name, size and mtime, the labels,
the extractor, the number of tiles and the resolution; training runs and calc_metrics.py share them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthhist.errors import UserError
from synthhist.fileio import atomic_open

log = logging.getLogger("synthhist")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class RealData:
    """Every real tile: where it is (file, TFRecord byte offset or -1 for an image file) and its class."""

    files: list[Path]
    tiles: list[tuple[int, int]]       # (index into files, offset)
    labels: np.ndarray                 # [num tiles] class index, -1 = unlabelled
    class_names: list[str] | None
    class_probs: np.ndarray | None     # [c_dim] fake-label distribution (slides, or images, per class)
    source: str

    def __len__(self) -> int:
        return len(self.tiles)


def _labelled(files: list[Path], file_labels: list[int], class_names: list[str] | None, probs, source: str,
              offsets: list[list[int]]) -> RealData:
    tiles = [(i, o) for i, offs in enumerate(offsets) for o in offs]
    labels = np.array([file_labels[i] for i, _ in tiles], np.int64)
    return RealData(files, tiles, labels, class_names, probs, source)


def open_tfrecords(folder: Path, annotations: Path | None, outcome: str | None) -> RealData:
    """TFRecords of folder (or below it); labels from the annotations' outcome column, by slide name."""
    from synthhist.wsi.dataset import class_probs, slide_name
    from synthhist.wsi.tfrecord import read_index

    files = sorted(folder.glob("*.tfrecords")) or sorted(folder.rglob("*.tfrecords"))
    labels, names = {}, None
    if annotations is not None:
        from synthhist.wsi.labels import outcome_labels, read_annotations

        if not outcome:
            raise UserError("--annotations needs --outcome (the column of class labels)")
        labels, names = outcome_labels(read_annotations(annotations), outcome)
        if any(isinstance(v, float) for v in labels.values()):
            raise UserError(f"outcome '{outcome}' is continuous: per-class metrics need a categorical column")
        files = [f for f in files if slide_name(f) in labels]
        if not files:
            raise UserError(f"none of the TFRecords in {folder} belong to an annotated slide of {annotations}")
    offsets = [[o for o, _ in read_index(f)] for f in files]
    file_labels = [labels.get(slide_name(f), -1) for f in files]
    used = {slide_name(f): labels[slide_name(f)] for f, offs in zip(files, offsets) if offs and labels}
    probs = class_probs(used, len(names)) if names else None
    return _labelled(files, file_labels, names, probs, str(folder), offsets)


def open_images(folder: Path) -> RealData:
    """Images in folder (unlabelled) or in folder/<class name>/ (labelled by subfolder, names sorted)."""
    flat = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if flat or not subdirs:
        return _labelled(flat, [-1] * len(flat), None, None, str(folder), [[-1]] * len(flat))
    groups = [sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for d in subdirs]
    keep = [(d.name, g) for d, g in zip(subdirs, groups) if g]
    files = [p for _, g in keep for p in g]
    file_labels = [k for k, (_, g) in enumerate(keep) for _ in g]
    counts = np.array([len(g) for _, g in keep], np.float64)
    names = [name for name, _ in keep] if len(keep) > 1 else None
    probs = counts / counts.sum() if names else None
    if names is None:
        file_labels = [-1] * len(files)
    return _labelled(files, file_labels, names, probs, str(folder), [[-1]] * len(files))


def open_data(data: str | Path, annotations: str | Path | None = None, outcome: str | None = None) -> RealData:
    """The real tiles of a folder of TFRecords or images; UserError when there are none."""
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise UserError(f"--data {folder}: not a folder")
    has_tfr = any(folder.glob("*.tfrecords")) or any(folder.rglob("*.tfrecords"))
    real = open_tfrecords(folder, Path(annotations) if annotations else None, outcome) if has_tfr \
        else open_images(folder)
    if not len(real):
        raise UserError(f"--data {folder}: no images (.png/.jpg, optionally in class subfolders) or TFRecord tiles")
    return real


def select(real: RealData, max_tiles: int | None, class_idx: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices of up to max_tiles tiles (of one class when class_idx is given), a fixed random sample, sorted."""
    idx = np.arange(len(real)) if class_idx is None else np.flatnonzero(real.labels == class_idx)
    if max_tiles is not None and len(idx) > max_tiles:
        idx = np.sort(np.random.default_rng(seed).permutation(idx)[:max_tiles])
    return idx


def read_tiles(real: RealData, idx: np.ndarray) -> list[np.ndarray]:
    """uint8 [H, W, 3] of the tiles idx (TFRecords read in file order)."""
    from synthhist.wsi.dataset import decode_tile
    from synthhist.wsi.tfrecord import read_records_at

    out = []
    pos = 0
    while pos < len(idx):
        f = real.tiles[idx[pos]][0]
        end = pos
        while end < len(idx) and real.tiles[idx[end]][0] == f:
            end += 1
        path = real.files[f]
        try:
            if real.tiles[idx[pos]][1] < 0:
                out.extend(decode_tile(path.read_bytes()) for _ in range(end - pos))
            else:
                offsets = [real.tiles[i][1] for i in idx[pos:end]]
                out.extend(decode_tile(r["image_raw"]) for r in read_records_at(path, offsets))
        except (OSError, ValueError, KeyError) as e:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(f"{path}: cannot read a tile ({str(e).splitlines()[0][:150]})") from None
        pos = end
    return out


def to_model_input(tiles: list[np.ndarray], res: int) -> torch.Tensor:
    """uint8 tiles -> [N, 3, res, res] float in [-1, 1], resized as training does (bilinear, antialiased)."""
    shapes = {t.shape for t in tiles}
    if len(shapes) > 1:
        raise UserError(f"the real tiles have different sizes ({', '.join(str(s[:2]) for s in sorted(shapes)[:3])})")
    x = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1
    if x.shape[-1] != res or x.shape[-2] != res:
        x = F.interpolate(x, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
    return x


def cache_key(real: RealData, idx: np.ndarray, extractor_key: str, res: int) -> str:
    """sha256 over the files (name, size, mtime), the chosen tiles and labels, the extractor and the resolution."""
    h = hashlib.sha256()
    stats = [(str(p.resolve()), (s := p.stat()).st_size, s.st_mtime_ns) for p in real.files]
    h.update(json.dumps([stats, extractor_key, res]).encode())
    h.update(np.asarray([real.tiles[i] for i in idx], np.int64).tobytes())
    h.update(real.labels[idx].tobytes())
    return h.hexdigest()


def real_features(real: RealData, idx: np.ndarray, ext, res: int, batch: int, cache: Path | None = None) -> np.ndarray:
    """Features [len(idx), D] of the real tiles idx at resolution res; from the cache when computed before."""
    from synthhist.metrics.features import stream_features
    from synthhist.metrics.inception import cache_dir

    path = (cache or cache_dir()) / "reals" / f"{cache_key(real, idx, ext.key, res)}.npy"
    if path.is_file():
        try:
            feats = np.load(path, allow_pickle=False)
            if feats.shape == (len(idx), ext.dim):
                log.info(f"real features: {len(idx)} tiles from the cache ({path})")
                return feats
        except (OSError, ValueError):
            pass
        log.warning(f"{path}: damaged cache entry, computing the real features again")
    chunks = [idx[i:i + batch] for i in range(0, len(idx), batch)]
    feats = stream_features(chunks, lambda c: to_model_input(read_tiles(real, c), res), ext, len(idx), "reals")
    with atomic_open(path, "wb") as f:
        np.save(f, feats)
    return feats
