"""Metrics at snapshots (--metrics): the one place where training calls the metrics package.

`synthhist.metrics.report.snapshot_metrics(run_dir, network_dir, metrics, dataset_info, device)` computes
the metrics of a snapshot and appends them to run_dir/metric-<name>.jsonl. Until that module exists,
requested metrics are reported unavailable once and training goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger("synthhist")


def _report():
    """synthhist.metrics.report, or None when the metrics package is not there."""
    try:
        import synthhist.metrics.report as report
    except ModuleNotFoundError as e:
        if e.name in ("synthhist.metrics", "synthhist.metrics.report"):
            return None
        raise
    return report


def names(metrics: str) -> list[str]:
    """'none' | 'a,b' -> metric names."""
    return [] if metrics in ("", "none") else [m.strip() for m in metrics.split(",") if m.strip()]


def check_metrics(metrics: str) -> None:
    """At start-up: warn once when metrics are requested but cannot be computed."""
    if names(metrics) and _report() is None:
        log.warning(f"--metrics {metrics}: FID is unavailable (no Inception weights or metrics library "
                    "installed); training goes on without metrics")


def snapshot_metrics(run_dir: Path, snapshot: Path, metrics: str, ds, device: torch.device) -> None:
    """Compute the requested metrics of one snapshot (appended to run_dir/metric-<name>.jsonl)."""
    report = _report()
    if not names(metrics) or report is None:
        return
    dataset_info = {"tfrecords": [str(p) for p in ds.tfrecords], "labels": dict(ds.labels),
                    "class_names": list(ds.class_names), "class_probs": [float(p) for p in ds.class_probs],
                    "tile_px": ds.tile_px}
    report.snapshot_metrics(run_dir, snapshot, names(metrics), dataset_info, device)
