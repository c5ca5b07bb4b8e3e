"""The project folder of one cohort: predictable places for annotations, slides, ROIs, tiles, models, GAN runs.

Layout (root = --outdir, default ./<experiment name>; a cohort's GAN and classifier configs share it):

    project.json                    name and annotations of the project (written once, checked on reuse)
    <annotations>.csv               the experiment's annotations (downloaded or copied, sha256-verified)
    gdc_manifest.tsv                GDC id, filename, md5, size of the looked-up slides (gdc-client format)
    md5_verified.json               slides whose MD5 was checked: name -> [md5, size, mtime_ns]
    downloads/                      ROI archives (and their .part files while downloading)
    slides/<slide>.svs              whole-slide images (also found one folder deep, any slide extension)
    quarantine/                     slides whose MD5 did not match GDC's
    roi/<slide>.csv                 ROI polygons (from the ROI archive)
    tfrecords/<px>px_<um>um/        <slide>.tfrecords, <slide>.index, manifest.json, extraction report
    models/                         classifier runs
    gan/                            GAN runs
    logs/                           prepare.log, prepare_report.json, missing_slides.tsv
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from synthhist.config import Experiment
from synthhist.errors import UserError
from synthhist.fileio import atomic_write_json

SLIDE_EXTENSIONS = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif",
                    ".jpg", ".jpeg")


@dataclass(frozen=True)
class Project:
    """Paths of a project folder for one experiment."""

    root: Path
    exp: Experiment

    @property
    def settings(self) -> Path:
        return self.root / "project.json"

    @property
    def annotations(self) -> Path:
        return self.root / self.exp.annotations.filename

    @property
    def gdc_manifest(self) -> Path:
        return self.root / "gdc_manifest.tsv"

    @property
    def md5_cache(self) -> Path:
        return self.root / "md5_verified.json"

    @property
    def downloads_dir(self) -> Path:
        return self.root / "downloads"

    @property
    def slides_dir(self) -> Path:
        return self.root / "slides"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def roi_dir(self) -> Path:
        return self.root / "roi"

    @property
    def tfrecord_dir(self) -> Path:
        return self.root / "tfrecords" / self.exp.tile_label

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def gan_dir(self) -> Path:
        return self.root / "gan"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> "Project":
        """Create the folders and project.json, or check that an existing project belongs to this experiment."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"project folder {self.root} exists and is not a folder")
        if self.settings.is_file():
            try:
                settings = json.loads(self.settings.read_text())
            except ValueError:
                raise UserError(f"{self.settings} is not valid JSON; fix or delete it") from None
            if settings.get("name") != self.exp.name:
                raise UserError(f"{self.root} is the project of {settings.get('name')!r}, not {self.exp.name!r}; "
                                "choose another --outdir")
            if settings.get("annotations") != self.exp.annotations.filename:
                raise UserError(f"{self.root} uses annotations {settings.get('annotations')!r}, "
                                f"but {self.exp.path} names {self.exp.annotations.filename!r}")
        for d in (self.slides_dir, self.roi_dir, self.tfrecord_dir, self.models_dir, self.gan_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not self.settings.is_file():
            atomic_write_json(self.settings, {"name": self.exp.name, "annotations": self.exp.annotations.filename})
        return self

    def find_slides(self, names: list[str]) -> dict[str, Path]:
        """Slide files of the given names in slides/ or one folder below (matched by file stem)."""
        wanted, found = set(names), {}
        candidates = sorted(self.slides_dir.glob("*")) + sorted(self.slides_dir.glob("*/*"))
        for p in candidates:
            if p.is_file() and p.suffix.lower() in SLIDE_EXTENSIONS and p.stem in wanted and p.stem not in found:
                found[p.stem] = p
        return found
