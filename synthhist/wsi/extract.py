"""Tile extraction: slides -> one TFRecord of tiles per slide, in parallel processes (docs/slideflow.md §2).

Per slide: grid of non-overlapping tiles (geometry.py) -> ROI filter on tile centres (roi.py) -> QC mask
(qc.py) -> read + resize each remaining tile -> whitespace / grayspace filters (filters.py) -> PNG/JPEG
-> ``<outdir>/<slide>.tfrecords`` (+ ``.index``), written to a temp file and renamed when complete, so
an interrupted slide is redone and a finished one is skipped. Tile order is shuffled with a seed derived
from the slide name (reproducible; slideflow 1.3.2 used an unseeded shuffle). A slide that cannot be used
is skipped with its reason in the report; a slide that keeps no tile writes no TFRecord and says why.

Speed: neighbouring tiles of a grid row are read as one region (OpenSlide decodes each of the slide's own
tiles once) where that cuts the same pixels as tile-by-tile reads (the tile side on the level is a whole
number of level pixels); tiles are framed in reading order into an anonymous temp file, then copied into
the TFRecord in the seeded shuffled order. Tiles are resized by libvips (lanczos3, as slideflow); PNGs come
from png.py (libdeflate; see there).
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import logging
import multiprocessing as mp
import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pyvips
from PIL import Image
from tqdm import tqdm

from synthhist.errors import UserError
from synthhist.fileio import atomic_open
from synthhist.wsi import filters, qc
from synthhist.wsi.geometry import tile_geometry
from synthhist.wsi.png import encode_png
from synthhist.wsi.roi import points_in_polygons, read_rois
from synthhist.wsi.slide import open_slide, slide_mpp, slide_name
from synthhist.wsi.tfrecord import index_path, read_index, tile_frame, update_manifest, write_frames

log = logging.getLogger("synthhist")

ROI_METHODS = ("auto", "inside", "outside", "ignore")
IMG_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}
REPORT_COLUMNS = ["slide", "status", "grid_tiles", "tiles_kept", "dropped_roi", "dropped_qc", "dropped_whitespace",
                  "dropped_grayspace", "reason", "seconds"]
RUN_PX = 4096             # widest region read at once (level pixels): a run of neighbouring tiles of one row


@dataclass(frozen=True)
class TileOptions:
    """Everything that decides which tiles a slide yields and how they are encoded."""

    tile_px: int
    tile_um: float
    roi_dir: Path | None = None
    roi_method: str = "auto"
    qc: str | None = None
    grayspace_fraction: float = 0.6
    grayspace_threshold: float = 0.05
    whitespace_fraction: float = 1.0
    whitespace_threshold: float = 230
    img_format: str = "png"


def _row(name: str, status: str, reason: str = "", **counts) -> dict:
    return {"slide": name, "status": status, "grid_tiles": 0, "tiles_kept": 0, "dropped_roi": 0, "dropped_qc": 0,
            "dropped_whitespace": 0, "dropped_grayspace": 0, "reason": reason, "seconds": 0.0} | counts


def _slide_rois(name: str, opts: TileOptions) -> list[np.ndarray] | None:
    """Polygons that restrict the slide's tiles, or None for the whole slide."""
    if opts.roi_method == "ignore":
        return None
    path = opts.roi_dir / f"{name}.csv" if opts.roi_dir else None
    if path is None or not path.is_file():
        if opts.roi_method == "auto":
            return None
        raise UserError(f"slide {name}: no ROI file {path or (name + '.csv')} (roi_method='{opts.roi_method}')")
    polygons = read_rois(path, name)
    if not polygons:
        if opts.roi_method == "auto":
            log.warning(f"slide {name}: ROI file {path} has no polygon with >= 3 points; using the whole slide")
            return None
        raise UserError(f"slide {name}: ROI file {path} has no polygon with >= 3 points")
    return polygons


def _runs(top_lefts: np.ndarray, full_extract_px: int, max_tiles: int) -> list[np.ndarray]:
    """Split [n, 2] grid-order top-lefts into runs of up to max_tiles row neighbours (each [k, 2])."""
    if not len(top_lefts):
        return []
    x, y = top_lefts[:, 0], top_lefts[:, 1]
    breaks = np.flatnonzero((np.diff(x) != full_extract_px) | (np.diff(y) != 0)) + 1
    return [run[i:i + max_tiles] for run in np.split(top_lefts, breaks) for i in range(0, len(run), max_tiles)]


def _read_run(osr: openslide.OpenSlide, run: np.ndarray, level: int, extract_px: int, tile_px: int) -> list[np.ndarray]:
    """uint8 [tile_px, tile_px, 3] tiles of one run (level-0 top-lefts of row neighbours); transparent -> white."""
    region = osr.read_region((int(run[0, 0]), int(run[0, 1])), level, (extract_px * len(run), extract_px))
    if region.getchannel("A").getextrema()[0] < 255:
        flat = Image.new("RGB", region.size, (255, 255, 255))
        flat.paste(region, mask=region.getchannel("A"))
        region = flat
    else:
        region = region.convert("RGB")
    if extract_px == tile_px:
        rgb = np.asarray(region)
        return [rgb[:, k * extract_px:(k + 1) * extract_px] for k in range(len(run))]
    # libvips' lanczos3 resize, as slideflow's (docs/slideflow.md §2.2); 2.7x faster than Pillow's LANCZOS
    vips = pyvips.Image.new_from_memory(region.tobytes(), region.width, region.height, 3, "uchar")
    tiles = []
    for k in range(len(run)):
        tile = vips.crop(k * extract_px, 0, extract_px, extract_px).resize(tile_px / extract_px, kernel="lanczos3")
        tiles.append(np.frombuffer(tile.write_to_memory(), np.uint8).reshape(tile_px, tile_px, 3))
    return tiles


def _encode(tile: np.ndarray, fmt: str) -> bytes:
    """Lossless PNG (png.py) or JPEG quality 100."""
    if IMG_FORMATS[fmt] == "PNG":
        return encode_png(tile)
    buf = io.BytesIO()
    Image.fromarray(tile).save(buf, format="JPEG", quality=100)
    return buf.getvalue()


def extract_slide(path: Path, outdir: Path, opts: TileOptions) -> dict:
    """Extract one slide's tiles to outdir/<slide>.tfrecords; return its report row (never raises for bad slides)."""
    name, start = slide_name(path), time.time()
    try:
        row = _extract(path, outdir, opts)
    except UserError as e:
        row = _row(name, "skipped", str(e))
    except (openslide.OpenSlideError, OSError, ValueError) as e:
        row = _row(name, "skipped", f"slide {name} failed while reading ({type(e).__name__}: {e})")
    row["seconds"] = round(time.time() - start, 2)
    return row


def _extract(path: Path, outdir: Path, opts: TileOptions) -> dict:
    name = slide_name(path)
    osr = open_slide(path)
    try:
        mpp = slide_mpp(osr, name)
        geom = tile_geometry(osr.dimensions, osr.level_downsamples, mpp, opts.tile_px, opts.tile_um)
        top_lefts = geom.top_lefts()  # [n, 2]
        counts = {"grid_tiles": len(top_lefts)}
        if not len(top_lefts):
            w, h = osr.dimensions
            return _row(name, "skipped", f"slide {name} ({w}x{h} px) is smaller than one {geom.full_extract_px} px tile",
                        **counts)
        keep = np.ones(len(top_lefts), dtype=bool)
        polygons = _slide_rois(name, opts)
        if polygons is not None:
            inside = points_in_polygons(geom.centres(), polygons)
            keep = ~inside if opts.roi_method == "outside" else inside
            counts["dropped_roi"] = int((~keep).sum())
        if opts.qc and keep.any():
            mask = qc.slide_qc_mask(osr, mpp, opts.qc)
            bad = qc.tile_bad_fraction(mask, osr.dimensions[0], top_lefts, geom.full_extract_px) > qc.FILTER_THRESHOLD
            counts["dropped_qc"] = int((keep & bad).sum())
            keep &= ~bad
        candidates = top_lefts[keep]              # grid order (rows of neighbours)
        counts |= {"dropped_whitespace": 0, "dropped_grayspace": 0}
        exact = geom.extract_px * geom.downsample == geom.full_extract_px   # a run cuts what single reads give
        per_run = max(1, RUN_PX // geom.extract_px) if exact else 1

        def tiles():
            for run in _runs(candidates, geom.full_extract_px, per_run):
                yield from zip(run, _read_run(osr, run, geom.level, geom.extract_px, opts.tile_px))

        def records():
            for (x, y), tile in tiles():
                if opts.whitespace_fraction < 1 and \
                        filters.whitespace_fraction(tile, opts.whitespace_threshold) > opts.whitespace_fraction:
                    counts["dropped_whitespace"] += 1
                    continue
                if opts.grayspace_fraction < 1 and \
                        filters.grayspace_fraction(tile, opts.grayspace_threshold) > opts.grayspace_fraction:
                    counts["dropped_grayspace"] += 1
                    continue
                centre = geom.full_extract_px / 2
                yield {"slide": name, "image_raw": _encode(tile, opts.img_format),
                       "loc_x": int(x + centre), "loc_y": int(y + centre)}

        out = outdir / f"{name}.tfrecords"
        with tempfile.TemporaryFile(dir=outdir) as grid:   # framed tiles in reading order (unlinked already)
            spans = []
            for rec in records():
                data = tile_frame(rec)
                spans.append((grid.tell(), len(data)))
                grid.write(data)
            order = np.random.default_rng(zlib.crc32(name.encode())).permutation(len(spans))

            def shuffled():
                for i in order:
                    grid.seek(spans[i][0])
                    yield grid.read(spans[i][1])

            kept = write_frames(out, shuffled())
    finally:
        osr.close()
    counts["tiles_kept"] = kept
    if kept == 0:
        out.unlink()
        index_path(out).unlink()
        dropped = ", ".join(f"{k[8:]} {v}" for k, v in counts.items() if k.startswith("dropped_") and v)
        return _row(name, "empty", f"slide {name}: no tile kept of {counts['grid_tiles']} ({dropped})", **counts)
    return _row(name, "extracted", **counts)


def _check_options(slides: list[Path], opts: TileOptions) -> None:
    if opts.roi_method not in ROI_METHODS:
        raise UserError(f"unknown roi_method '{opts.roi_method}' (choose from {', '.join(ROI_METHODS)})")
    if opts.qc is not None and opts.qc not in qc.QC_METHODS:
        raise UserError(f"unknown qc method '{opts.qc}' (choose from {', '.join(qc.QC_METHODS)} or none)")
    if opts.img_format not in IMG_FORMATS:
        raise UserError(f"unknown img_format '{opts.img_format}' (choose png or jpg)")
    if opts.roi_method in ("inside", "outside") and opts.roi_dir is None:
        raise UserError(f"roi_method='{opts.roi_method}' needs an ROI folder")
    if opts.roi_dir is not None and not opts.roi_dir.is_dir():
        raise UserError(f"ROI folder not found: {opts.roi_dir}")
    names = [slide_name(p) for p in slides]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise UserError(f"several slide files share the name(s) {', '.join(dups[:5])}")


def extract_tiles(slides: list[Path], outdir: Path, tile_px: int, tile_um: float, roi_dir: Path | None = None,
                  roi_method: str = "auto", qc: str | None = None, grayspace_fraction: float = 0.6,
                  grayspace_threshold: float = 0.05, whitespace_fraction: float = 1.0,
                  whitespace_threshold: float = 230, img_format: str = "png", workers: int | None = None) -> pd.DataFrame:
    """Extract tiles of every slide to outdir/<slide>.tfrecords (+ .index, manifest.json); return the report.

    Slides whose TFRecord exists are not redone. The report (also written to outdir/reports/) has per slide:
    status (extracted, done before, empty, skipped), grid/kept tile counts, tiles dropped per filter, reason.
    """
    slides = [Path(p) for p in slides]
    outdir = Path(outdir)
    opts = TileOptions(int(tile_px), float(tile_um), Path(roi_dir) if roi_dir else None, roi_method, qc,
                       grayspace_fraction, grayspace_threshold, whitespace_fraction, whitespace_threshold,
                       img_format.lower())
    _check_options(slides, opts)
    if not slides:
        raise UserError("no slides to extract tiles from")
    outdir.mkdir(parents=True, exist_ok=True)
    rows, todo = [], []
    for p in slides:
        done = outdir / f"{slide_name(p)}.tfrecords"
        if done.is_file():
            rows.append(_row(slide_name(p), "done before", tiles_kept=len(read_index(done))))
        else:
            todo.append(p)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    bar = tqdm(total=len(todo), desc=f"Extracting {opts.tile_px}px/{opts.tile_um:g}um tiles", unit="slide")
    with bar:
        if workers == 1:
            for p in todo:
                rows.append(_log_row(extract_slide(p, outdir, opts), bar))
        else:
            with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(extract_slide, p, outdir, opts) for p in todo]
                for fut in cf.as_completed(futures):
                    rows.append(_log_row(fut.result(), bar))
    update_manifest(outdir)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    report = report.set_index("slide").loc[[slide_name(p) for p in slides]].reset_index()
    report_path = outdir / "reports" / f"extract-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.csv"
    with atomic_open(report_path, "w") as f:
        report.to_csv(f, index=False)
    report.attrs["path"] = str(report_path)
    _summarise(report, report_path, opts)
    return report


def _log_row(row: dict, bar: tqdm) -> dict:
    bar.update(1)
    bar.set_postfix_str(f"{row['slide']}: {row['tiles_kept']} tiles")
    if row["status"] != "extracted":
        log.warning(row["reason"])
    return row


def _summarise(report: pd.DataFrame, report_path: Path, opts: TileOptions) -> None:
    by_status = report["status"].value_counts().to_dict()
    log.info(f"tiles: {int(report['tiles_kept'].sum())} from {len(report)} slide(s) "
             f"({', '.join(f'{n} {s}' for s, n in by_status.items())}); report: {report_path}")
    if int(report["tiles_kept"].sum()) == 0:
        reasons = "; ".join(dict.fromkeys(r for r in report["reason"] if r))
        raise UserError(f"no tiles extracted from any of {len(report)} slide(s) ({opts.tile_px}px, "
                        f"{opts.tile_um:g}um): {reasons[:500]} -- see {report_path}")
