"""Compute the metrics of a generator against real tiles, overall and per class, and append them as JSONL.

Metric names follow NVIDIA's StyleGAN2-ADA (docs/stylegan2.md): fid50k_full, kid50k_full, pr50k3_full, plus
fd_clf, the Fréchet distance in a histology classifier's penultimate features. `num` replaces the 50k
generated images and caps the real tiles (by default all real tiles are used, KID at most 1M and
precision/recall at most 200k, as NVIDIA's). For a conditional network the overall value compares all real
tiles with images whose classes are drawn with the dataset's class frequencies (as training draws fake
labels), and the per-class values real tiles of class k with images of class k.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from synthhist.errors import UserError
from synthhist.metrics.frechet import feature_stats, frechet_distance
from synthhist.metrics.kid import kernel_inception_distance
from synthhist.metrics.precision_recall import precision_recall
from synthhist.metrics.reals import RealData, open_data, read_tiles, real_features, select

log = logging.getLogger("synthhist")

METRICS = {  # name: (feature extractor, cap on real tiles when num is not given)
    "fid50k_full": ("inception", None),
    "kid50k_full": ("inception", 1_000_000),
    "pr50k3_full": ("inception", 200_000),
    "fd_clf": ("classifier", None),
}
NUM_GEN = 50_000


def parse_metrics(spec: str | list[str]) -> list[str]:
    """'fid50k_full,fd_clf' (or a list) -> validated metric names; UserError naming an unknown one."""
    names = [m.strip() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    if not names:
        raise UserError(f"no metric given (choose from {', '.join(METRICS)})")
    for m in names:
        if m not in METRICS:
            raise UserError(f"unknown metric {m!r} (choose from {', '.join(METRICS)})")
    return list(dict.fromkeys(names))


def compute(metric: str, real: np.ndarray, fake: np.ndarray, cap: int | None) -> dict[str, float]:
    """{result name: value} of one metric on real [N, D] and fake [M, D] features."""
    if cap is not None and len(real) > cap:
        real = real[np.random.default_rng(0).permutation(len(real))[:cap]]
    if metric in ("fid50k_full", "fd_clf"):
        return {metric: frechet_distance(*feature_stats(real), *feature_stats(fake))}
    if metric == "kid50k_full":
        return {metric: kernel_inception_distance(real, fake, num_subsets=100, max_subset_size=1000)}
    p, r = precision_recall(real, fake, k=3)
    return {f"{metric}_precision": p, f"{metric}_recall": r}


def class_map(real: RealData, net) -> dict[int, int]:
    """Data class index -> network class index (by class name when the network has names, else by order)."""
    if not net.c_dim or real.class_names is None:
        return {}
    names = net.class_names or []
    if names and set(real.class_names) <= set(names):
        return {k: names.index(n) for k, n in enumerate(real.class_names)}
    if len(real.class_names) != net.c_dim:
        raise UserError(f"the data has {len(real.class_names)} classes ({', '.join(real.class_names)}) but the "
                        f"network has {net.c_dim}" + (f" ({', '.join(names)})" if names else ""))
    return {k: k for k in range(net.c_dim)}


@dataclass
class Part:
    """One comparison: real tiles `idx` against `num` images of class `cls` (None: drawn; -1: unconditional)."""

    suffix: str                   # '' (overall) or '/<class name>'
    idx: np.ndarray
    cls: int | None
    fake_probs: np.ndarray | None = None
    values: dict = field(default_factory=dict)


def fake_features(G, ext, part: Part, num: int, batch: int, device: torch.device, seed: int) -> np.ndarray:
    """Features [num, D] of num generated images (psi 1, const noise), pipelined with the extractor."""
    from synthhist.metrics.features import stream_features
    from synthhist.wsi.dataset import draw_classes

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(num, G.z_dim, generator=g)
    if G.c_dim and part.cls is None:
        c_idx = draw_classes(part.fake_probs, num, g)
    else:
        c_idx = torch.full((num,), max(part.cls or 0, 0), dtype=torch.int64)

    def render(i: int) -> torch.Tensor:
        c = torch.nn.functional.one_hot(c_idx[i:i + batch], max(G.c_dim, 1)).float()[:, :G.c_dim]
        return G(z[i:i + batch].to(device), c.to(device), noise_mode="const")

    return stream_features(range(0, num, batch), render, ext, num, "fakes" + part.suffix)


def data_class(real: RealData, value: str | int) -> int:
    """Index of a data class given by index or by name (case-insensitive); UserError naming the classes."""
    names = list(real.class_names)
    text = str(value).strip()
    k = int(text) if text.isdigit() else next((i for i, n in enumerate(names) if n.lower() == text.lower()), None)
    if k is None or not 0 <= k < len(names):
        raise UserError(f"--class {text}: the data has classes " + ", ".join(f"{i} {n}" for i, n in enumerate(names)))
    return k


def _parts(real: RealData, net, classes: str | int | None, max_reals: int | None) -> list[Part]:
    cmap = class_map(real, net)
    if net.c_dim and not cmap:
        log.warning("the data has no class labels: generated classes are drawn uniformly and no per-class "
                    "metric is computed (pass --annotations/--outcome, or class subfolders)")
    probs = np.full(max(net.c_dim, 1), 1.0 / max(net.c_dim, 1))
    if cmap:
        probs = np.zeros(net.c_dim)
        for k, j in cmap.items():
            probs[j] += real.class_probs[k]
    parts = [Part("", select(real, max_reals), None if net.c_dim else -1, probs)]
    if cmap and classes is not None:
        wanted = range(len(real.class_names)) if classes == "all" else [data_class(real, classes)]
        for k in wanted:
            parts.append(Part(f"/{real.class_names[k]}", select(real, max_reals, k), cmap[k]))
    return parts


def calc_metrics(net, real: RealData, metrics: list[str], *, classifier: str | None = None, num: int | None = None,
                 classes: str | int | None = "all", batch: int = 32, device: torch.device | None = None,
                 seed: int = 0) -> list[dict]:
    """One result per metric: {'metric', 'results': {name[/class]: value}, 'total_time', 'num_real', 'num_gen'}."""
    from synthhist.metrics.features import load_classifier_features, load_inception

    device = device or next(net.G.parameters()).device
    res = int(net.G.img_resolution)
    if "fd_clf" in metrics and not classifier:
        raise UserError("fd_clf needs a histology classifier: pass --classifier (a model folder, hf:..., or demo)")
    px = read_tiles(real, np.array([0]))[0].shape[0]
    if px != res:
        log.warning(f"the real tiles are {px} px and the network's images {res} px: resizing the real tiles to {res} px")
    num_gen = num or NUM_GEN
    out = []
    for kind in dict.fromkeys(METRICS[m][0] for m in metrics):
        group = [m for m in metrics if METRICS[m][0] == kind]
        t0 = time.time()
        if kind == "inception":
            ext = load_inception(device)
        else:
            from synthhist.explain.bridge import gan_tile

            ext = load_classifier_features(classifier, *gan_tile(net))
        max_reals = num if num is not None else None
        parts = _parts(real, net, classes, max_reals)
        if num is not None and len(parts[0].idx) < num:
            log.warning(f"only {len(parts[0].idx)} real tiles in {real.source}, fewer than --num {num}: using all of them")
        results = {m: {} for m in group}
        for part in parts:
            if len(part.idx) < 2:
                log.warning(f"class {part.suffix[1:]}: {len(part.idx)} real tile(s), skipped (needs at least 2)")
                continue
            r = real_features(real, part.idx, ext, res, batch)
            f = fake_features(net.G, ext, part, num_gen, batch, device, seed)
            for m in group:
                cap = None if num is not None else METRICS[m][1]
                results[m].update({k + part.suffix: v for k, v in compute(m, r, f, cap).items()})
        for m in group:
            out.append(dict(results=results[m], metric=m, total_time=time.time() - t0, num_real=int(len(parts[0].idx)),
                            num_gen=num_gen))
    return out


def append_jsonl(path: Path, result: dict, snapshot: str) -> dict:
    """Append one line like NVIDIA's metric-<name>.jsonl (results, metric, total_time, snapshot_pkl, timestamp)."""
    line = dict(result, total_time_str=f"{result['total_time']:.0f}s", snapshot_pkl=snapshot, timestamp=time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
    return line


def format_table(results: list[dict]) -> str:
    """The results as an aligned text table (one row per value)."""
    rows = [(k, f"{v:.6g}") for r in results for k, v in r["results"].items()]
    w = max((len(k) for k, _ in rows), default=6)
    return "\n".join([f"{'metric':<{w}}  value", *(f"{k:<{w}}  {v}" for k, v in rows)])


def snapshot_metrics(run_dir: Path, network_dir: Path, metrics: list[str], *, data: Path,
                     annotations: Path | None = None, outcome: str | None = None, classifier: str | None = None,
                     device: torch.device | str | None = None, num: int | None = None, classes: str | int | None = None,
                     batch: int = 32) -> list[dict]:
    """Metrics of a training snapshot appended to run_dir/metric-<name>.jsonl; real features come from the cache."""
    from synthhist.gan import load_network

    net = load_network(network_dir, device=device)
    real = open_data(data, annotations, outcome)
    lines = []
    for r in calc_metrics(net, real, parse_metrics(metrics), classifier=classifier, num=num, classes=classes,
                          batch=batch):
        lines.append(append_jsonl(Path(run_dir) / f"metric-{r['metric']}.jsonl", r, Path(network_dir).name))
        log.info(" ".join(f"{k} {v:.4f}" for k, v in r["results"].items()))
    return lines


def training_metrics(project, exp, *, classifier: str | None = None, num: int | None = None
                     ) -> Callable[[list[str]], Callable[[Path, Path, torch.device], list[dict]]]:
    """train_gan.py's --metrics: names -> hook(run_dir, snapshot_dir, device) over the project's training tiles.

    classifier: for fd_clf; num: generated images per metric (default: the metric's own, 50k).
    Checked when training starts (names, fd_clf, the Inception weights fetched into the cache), not at the first
    snapshot; the real features are computed once and cached (synthhist.metrics.reals).
    """
    def for_names(names: list[str]):
        names = parse_metrics(names)
        if "fd_clf" in names and classifier is None:
            raise UserError("--metrics fd_clf needs --metrics-classifier (a classifier folder, hf:owner/repo or demo)")
        if any(m != "fd_clf" for m in names):
            from synthhist.metrics.inception import fetch_weights

            fetch_weights()

        def hook(run_dir: Path, snapshot: Path, device: torch.device) -> list[dict]:
            return snapshot_metrics(run_dir, snapshot, names, data=project.tfrecord_dir,
                                    annotations=project.annotations, outcome=exp.outcome, device=device,
                                    classifier=classifier, num=num)
        return hook
    return for_names
