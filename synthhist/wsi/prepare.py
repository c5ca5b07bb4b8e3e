"""Prepare an experiment's project: folder, annotations, ROIs, slides (GDC download, MD5), tile extraction."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from synthhist.cli import setup_logging
from synthhist.config import Experiment
from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_write_json
from synthhist.wsi.gdc import SlideReport, fetch_slides
from synthhist.wsi.labels import read_annotations
from synthhist.wsi.project import Project
from synthhist.wsi.resources import extract_rois, fetch_resource

DOWNLOAD_WORKERS = 2
SHOW_MISSING = 50


def prepare_project(exp: Experiment, outdir: str | Path | None = None, download: bool = False, md5: bool = False,
                    workers: int | None = None, extract: bool = True) -> Project:
    """Create or continue the project of exp, fetch what it needs, extract tiles; reruns resume."""
    project = Project(Path(outdir or exp.name).resolve(), exp).ensure()
    log = setup_logging(project.logs_dir, "prepare.log")
    log.info(f"project {exp.name} ({exp.kind} config {exp.path}) in {project.root}")

    fetch_resource(exp.annotations, project.annotations, "annotations")
    df = read_annotations(project.annotations)
    if exp.outcome not in df.columns:
        raise UserError(f"outcome column {exp.outcome!r} not in {project.annotations.name} "
                        f"(columns: {', '.join(df.columns)})")
    names = sorted({s for s in df["slide"] if s.strip()})
    if not names:
        raise UserError(f"{project.annotations.name} names no slides")

    n_rois = None
    if exp.rois is not None:
        archive = fetch_resource(exp.rois, project.downloads_dir / exp.rois.filename, "ROI archive")
        n_rois = extract_rois(archive, project.roi_dir)
        log.info(f"{n_rois} ROI files in {project.roi_dir}")

    local = project.find_slides(names)      # slides elsewhere than slides/<slide>.svs are the user's own
    slides = fetch_slides([n for n in names if n not in local or local[n] == project.slides_dir / f"{n}.svs"],
                          project.slides_dir, project.quarantine_dir, project.gdc_manifest, project.md5_cache,
                          download_missing=download, md5=md5, workers=workers or DOWNLOAD_WORKERS)
    local = project.find_slides(names)
    no_roi = sorted(n for n in local if n_rois is not None and not (project.roi_dir / f"{n}.csv").is_file())

    tiles = None
    try:
        if extract:
            tiles = _extract(exp, project, [local[n] for n in sorted(local)], workers)
    finally:                                # what is missing is listed at the end, also when extraction fails
        report = _report(exp, project, names, local, slides, n_rois, no_roi, tiles)
        _summarise(project, report, slides, no_roi)
    return project


def _extract(exp: Experiment, project: Project, paths: list[Path], workers: int | None) -> dict[str, int]:
    """Extract tiles of the given slides into project.tfrecord_dir; returns slide -> tiles kept."""
    from synthhist.wsi.extract import extract_tiles          # openslide & co. only when extracting

    if not paths:
        raise UserError(f"no slides of {project.annotations.name} in {project.slides_dir} "
                        "(run with --download to fetch them from GDC)")
    logging.getLogger("synthhist").info(f"extracting {exp.tile_label} tiles from {len(paths)} slides "
                                        f"into {project.tfrecord_dir}")
    roi_dir = project.roi_dir if exp.rois is not None else None
    report = extract_tiles(paths, project.tfrecord_dir, exp.tile_px, exp.tile_um, roi_dir=roi_dir, workers=workers,
                           **exp.tile_kwargs)
    return {str(s): int(n) for s, n in zip(report["slide"], report["tiles_kept"])}


def _report(exp: Experiment, project: Project, names: list[str], local: dict[str, Path], slides: SlideReport,
            n_rois: int | None, no_roi: list[str], tiles: dict[str, int] | None) -> dict:
    """Write logs/prepare_report.json and logs/missing_slides.tsv; returns the report dict."""
    missing = slides.missing()
    for n in names:
        if n not in local and n not in missing:
            missing[n] = "not on disk"
    report = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), "experiment": str(exp.path), "kind": exp.kind,
        "project": str(project.root), "tile_label": exp.tile_label,
        "slides_in_annotations": len(names), "slides_on_disk": len(local),
        "downloaded": len(slides.downloaded), "md5_verified": len(slides.verified),
        "missing": len(missing), "rois": n_rois, "slides_without_roi": no_roi,
        "tiles_total": None if tiles is None else sum(tiles.values()),
        "slides_with_tiles": None if tiles is None else sum(v > 0 for v in tiles.values()),
    }
    atomic_write_json(project.logs_dir / "prepare_report.json", report)
    with atomic_open(project.logs_dir / "missing_slides.tsv", "w") as f:
        f.write("slide\treason\n")
        f.writelines(f"{n}\t{r}\n" for n, r in sorted(missing.items()))
    report["missing_slides"] = dict(sorted(missing.items()))
    return report


def _summarise(project: Project, report: dict, slides: SlideReport, no_roi: list[str]) -> None:
    """Log what is there and list what is missing (the full list is in logs/missing_slides.tsv)."""
    log = logging.getLogger("synthhist")
    log.info(f"slides: {report['slides_on_disk']} of {report['slides_in_annotations']} on disk"
             f" ({report['downloaded']} downloaded now, {report['md5_verified']} MD5-verified)")
    if report["tiles_total"] is not None:
        log.info(f"tiles: {report['tiles_total']} from {report['slides_with_tiles']} slides in {project.tfrecord_dir}")
    missing = report["missing_slides"]
    if missing:
        log.warning(f"{len(missing)} slides missing (list in {project.logs_dir / 'missing_slides.tsv'}):")
        for n, r in list(missing.items())[:SHOW_MISSING]:
            log.warning(f"  {n}: {r}")
        if len(missing) > SHOW_MISSING:
            log.warning(f"  ... and {len(missing) - SHOW_MISSING} more")
    if slides.quarantined:
        log.warning(f"{len(slides.quarantined)} slides with wrong MD5 moved to {project.quarantine_dir}")
    if no_roi:
        log.warning(f"{len(no_roi)} slides have no ROI file in {project.roi_dir} "
                    f"(with roi_method '{project.exp.tile_kwargs.get('roi_method', 'auto')}' they may give no tiles)")
