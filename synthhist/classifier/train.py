"""Classifier training from an experiment config (slideflow 1.3.2 P.train behaviour, docs/slideflow.md §4): labels,
patient splits, one model per fold in models/NNNNN-<outcome>-HP0[-kfold<k>]/ with params.json, metrics and predictions."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

import synthhist
from synthhist.classifier.hparams import complete_hp, model_type_of
from synthhist.classifier.metrics import evaluate
from synthhist.classifier.model import build_model, compile_model
from synthhist.classifier.batchnorm import recalibrate_batchnorm
from synthhist.classifier.pipeline import balance_weights, count_tiles, eval_dataset, train_dataset
from synthhist.classifier.preprocess import check_augment, norm_fit_for
from synthhist.classifier.splits import K_FOLD_STRATEGIES, VALIDATION_STRATEGIES, get_splits, patients_table, tcga_site
from synthhist.cli import setup_logging
from synthhist.errors import UserError
from synthhist.fileio import atomic_open, atomic_write_json, next_run_dir
from synthhist.wsi.dataset import tile_px_of
from synthhist.wsi.labels import outcome_labels, read_annotations

log = logging.getLogger("synthhist")
PARAMS_FORMAT = "1.3.2"  # the slideflow version whose params.json layout we write
RECALIBRATE_BATCHES = 16  # random-init base: BatchNorm statistics from this many training batches before saving


@dataclass
class Data:
    """Labelled slides with tiles: labels, patients, TFRecord paths, tile counts, sites (annotations' `site`
    column, else the TCGA tissue source site of the slide or patient name; None when neither)."""

    slides: list[str]
    labels: dict[str, int | float]
    class_names: list[str]
    patient: dict[str, str]
    tfrecords: dict[str, Path]
    tiles: dict[str, int]
    site: dict[str, str | None]


def training_options(exp, overrides: dict) -> dict:
    """Validation/seed/weights options: defaults < exp.train_kwargs < overrides (None = not given)."""
    opts = {"val_strategy": "k-fold", "val_k_fold": 3, "val_k": None, "val_fraction": 0.2, "seed": 0,
            "weights": "imagenet"}
    opts.update(exp.train_kwargs)
    opts.update({k: v for k, v in overrides.items() if v is not None and k in opts})
    if opts["val_strategy"] not in VALIDATION_STRATEGIES:
        raise UserError(f"validation strategy {opts['val_strategy']!r} is not supported (use one of "
                        f"{', '.join(VALIDATION_STRATEGIES)})")
    if isinstance(opts["val_k"], int):
        opts["val_k"] = [opts["val_k"]]
    return opts


def load_data(project, exp, model_type: str) -> Data:
    """Labels of the annotations matched to the project's TFRecords (by file stem) that hold tiles."""
    df = read_annotations(project.annotations)
    labels, class_names = outcome_labels(df, exp.outcome, linear=model_type == "linear")
    tfrecords = {p.stem: p for p in sorted(Path(project.tfrecord_dir).glob("*.tfrecords"))}
    if not tfrecords:
        raise UserError(f"no TFRecords in {project.tfrecord_dir}; extract tiles first")
    tiles = count_tiles([tfrecords[s] for s in sorted(tfrecords) if s in labels])
    slides = sorted(s for s, n in tiles.items() if n > 0)
    if not slides:
        raise UserError(f"none of the {len(tfrecords)} TFRecords in {project.tfrecord_dir} holds tiles of a slide "
                        f"with a '{exp.outcome}' label")
    px = tile_px_of(tfrecords[slides[0]])
    if px != exp.tile_px:
        raise UserError(f"tiles in {project.tfrecord_dir} are {px} px but the experiment wants tile_px {exp.tile_px}")
    if model_type == "categorical":
        present = sorted({labels[s] for s in slides})
        if len(present) < 2:
            raise UserError(f"outcome '{exp.outcome}' has a single class ({class_names[present[0]]!r}) among the "
                            f"{len(slides)} slides with tiles; a classifier needs at least 2")
    patient = dict(zip(df["slide"], df["patient"]))
    patient = {s: patient[s] or s for s in slides}
    listed = dict(zip(df["slide"], df["site"])) if "site" in df.columns else {}
    site = {s: str(listed[s]) if isinstance(listed.get(s), str) and listed[s] else tcga_site(s) or tcga_site(patient[s])
            for s in slides}
    return Data(slides, {s: labels[s] for s in slides}, class_names, patient, tfrecords, {s: tiles[s] for s in slides},
                site)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(synthhist.__file__).parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def make_params(project, exp, hp: dict, opts: dict, data: Data, model_type: str, run_dir: Path, k: int | None,
                norm_fit: dict | None) -> dict:
    """params.json content, with every key slideflow 1.3.2 writes (docs/slideflow.md §4.7)."""
    return {
        "slideflow_version": PARAMS_FORMAT, "synthhist_version": synthhist.__version__, "project": exp.name,
        "backend": "tensorflow", "git_commit": _git_commit(),
        "model_name": run_dir.name.split("-", 1)[1], "full_model_name": run_dir.name, "stage": "training",
        "img_format": exp.tile_kwargs.get("img_format", "png"), "tile_px": exp.tile_px, "tile_um": exp.tile_um,
        "max_tiles": 0, "min_tiles": 0, "model_type": model_type, "outcomes": [exp.outcome],
        "input_features": None, "input_feature_sizes": None, "input_feature_labels": None,
        "outcome_labels": {str(i): n for i, n in enumerate(data.class_names)},
        "dataset_config": str(getattr(project, "settings", project.root)), "sources": [exp.name],
        "annotations": str(project.annotations), "validation_strategy": opts["val_strategy"],
        "validation_fraction": opts["val_fraction"] if opts["val_strategy"] in ("fixed", "bootstrap") else None,
        "validation_k_fold": opts["val_k_fold"] if opts["val_strategy"] in K_FOLD_STRATEGIES else None,
        "k_fold_i": k, "filters": None, "hp": hp,
        "training_kwargs": {k_: opts[k_] for k_ in ("val_strategy", "val_k_fold", "val_k", "val_fraction", "seed", "weights")},
        "norm_fit": norm_fit,
    }


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    with atomic_open(path, "w") as f:
        df.to_csv(f, index=False)


def append_results(path: Path, rows: list[dict]) -> None:
    """Append metric rows (model_name, epoch, level, metric, outcome, value) to a results_log.csv."""
    new = pd.DataFrame(rows)
    old = pd.read_csv(path) if path.exists() else None
    _write_csv(path, new if old is None else pd.concat([old, new], ignore_index=True))


class ValidationCallback(keras.callbacks.Callback):
    """Each epoch (when needed): predict every validation tile, set logs val_loss/val_accuracy for
    EarlyStopping; at the save epochs also write predictions, metrics and the model."""

    def __init__(self, run_dir: Path, model_name: str, save_epochs: list[int], needed_every_epoch: bool,
                 val: tuple | None, model_type: str, data: Data, results_logs: list[Path], recalibrate=None):
        super().__init__()
        self.recalibrate = recalibrate  # training batches to reset BatchNorm statistics with (random-init base)
        self.run_dir, self.model_name, self.save_epochs = run_dir, model_name, save_epochs
        self.every_epoch, self.val, self.model_type, self.data = needed_every_epoch, val, model_type, data
        self.results_logs = results_logs
        self.saved: list[int] = []
        self.last_epoch = 0

    def predict_val(self) -> pd.DataFrame:
        """Tile-level validation predictions: slide, patient, loc_x, loc_y, y_true*, y_pred*."""
        ds, slides, n_tiles = self.val
        infer = tf.function(lambda x: self.model(x, training=False), autograph=False)
        parts = []
        with tqdm(total=n_tiles, desc="validation", unit="tile", leave=False, file=sys.stderr) as bar:
            for x, idx, lx, ly in ds:
                parts.append((infer(x).numpy().astype(np.float64), idx.numpy(), lx.numpy(), ly.numpy()))
                bar.update(len(idx))
        pred, idx, lx, ly = (np.concatenate(a) for a in zip(*parts))
        tile_slides = np.array(slides)[idx]
        df = pd.DataFrame({"slide": tile_slides, "patient": [self.data.patient[s] for s in tile_slides],
                           "loc_x": lx, "loc_y": ly})
        truth = np.array([self.data.labels[s] for s in tile_slides])
        if self.model_type == "categorical":
            df["y_true"] = truth.astype(int)
        else:
            df["y_true0"] = truth.astype(float)
        for i in range(pred.shape[1]):
            df[f"y_pred{i}"] = pred[:, i]
        return df

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        e = epoch + 1
        self.last_epoch = e
        save = e in self.save_epochs
        if self.recalibrate is not None and (save or self.every_epoch):
            recalibrate_batchnorm(self.model, self.recalibrate)
        if self.val is not None and (save or self.every_epoch):
            tiles = self.predict_val()
            rows, tables = evaluate(tiles, self.model_type, self.data.class_names)
            p = tiles.filter(like="y_pred").to_numpy()
            if self.model_type == "categorical":
                y = tiles["y_true"].to_numpy()
                loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1))))
                logs["val_accuracy"] = float((p.argmax(1) == y).mean())
            else:
                loss = float(np.mean((tiles.filter(like="y_true").to_numpy() - p) ** 2))
            logs["val_loss"] = loss
            rows.append({"level": "tile", "metric": "loss", "outcome": "", "value": loss})
            summary = ", ".join(f"{r['level']} {r['metric']}{'(' + r['outcome'] + ')' if r['outcome'] else ''} "
                                f"{r['value']:.4f}" for r in rows)
            log.info(f"epoch {e} validation: {summary}")
            if save:
                for level, table in tables.items():
                    _write_csv(self.run_dir / f"{level}_predictions_val_epoch{e}.csv", table)
                rows = [{"model_name": self.model_name, "epoch": e, **r} for r in rows]
                for path in self.results_logs:
                    append_results(path, rows)
        if save:
            self.save(e)

    def save(self, e: int) -> None:
        path = self.run_dir / f"{self.model_name}_epoch{e}.keras"
        tmp = path.with_name(f".{path.stem}.tmp.keras")
        self.model.save(tmp)
        tmp.replace(path)
        self.saved.append(e)
        log.info(f"saved {path}")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.last_epoch and self.last_epoch not in self.saved:  # stopped early: keep the last model
            log.info(f"stopped early after epoch {self.last_epoch}")
            self.save(self.last_epoch)


def _finished(models_dir: Path, model_name: str, params: dict) -> Path | None:
    """An existing run folder of this fold with the same settings and its final model, if any."""
    keys = ("tile_px", "tile_um", "outcomes", "hp", "validation_strategy", "validation_k_fold",
            "validation_fraction", "k_fold_i", "norm_fit", "training_kwargs")
    for d in sorted(models_dir.glob(f"*-{model_name}")):
        try:
            old = json.loads((d / "params.json").read_text())
        except (OSError, ValueError):
            continue
        if all(old.get(k) == params[k] for k in keys) and (d / "done.json").exists():
            return d
    return None


def train_fold(project, exp, hp: dict, *, opts: dict, data: Data, model_type: str, norm_fit: dict | None,
               val_slides: list[str], k: int | None) -> Path:
    """Train one model (one fold); returns its run folder."""
    models_dir = Path(project.models_dir)
    model_name = f"{exp.outcome}-HP0" + (f"-kfold{k}" if k is not None else "")
    probe = make_params(project, exp, hp, opts, data, model_type, models_dir / f"00000-{model_name}", k, norm_fit)
    done = _finished(models_dir, model_name, probe)
    if done is not None:
        log.info(f"{model_name}: already trained in {done}; skipping (delete it to retrain)")
        return done
    run_dir = next_run_dir(models_dir, model_name)
    run_dir.mkdir(parents=True)
    setup_logging(run_dir)
    params = make_params(project, exp, hp, opts, data, model_type, run_dir, k, norm_fit)
    atomic_write_json(run_dir / "params.json", params)
    val_set = set(val_slides)
    train_slides = [s for s in data.slides if s not in val_set]
    val_list = [s for s in data.slides if s in val_set]
    label_of = {s: (data.class_names[int(data.labels[s])] if model_type == "categorical" else data.labels[s])
                for s in data.slides}
    _write_csv(run_dir / "slide_manifest.csv", pd.DataFrame(
        [{"slide": s, "dataset": "validation" if s in val_set else "training", "outcome_label": label_of[s]}
         for s in data.slides]))
    n_train = sum(data.tiles[s] for s in train_slides)
    batch = int(hp["batch_size"])
    steps = max(1, round(n_train / batch))
    log.info(f"{run_dir.name}: {len(train_slides)} training slides ({n_train} tiles), {len(val_list)} validation "
             f"slides ({sum(data.tiles[s] for s in val_list)} tiles); {steps} steps/epoch of {batch}")

    keras.utils.set_random_seed(opts["seed"] + (k or 0))
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    n_out = len(data.class_names)
    model = build_model(hp, exp.tile_px, n_out, model_type, weights=opts["weights"])
    compile_model(model, hp, model_type)

    labels = np.array([data.labels[s] for s in train_slides], np.int64 if model_type == "categorical" else np.float32)
    if model_type == "linear":
        labels = labels[:, None]
    weights = balance_weights(train_slides, hp["training_balance"], data.labels, data.patient, data.tiles)
    train_ds = train_dataset([data.tfrecords[s] for s in train_slides], labels, weights, exp.tile_px, batch,
                             norm_fit, check_augment(hp["augment"]), opts["seed"] + (k or 0))
    val = None
    if val_list:
        val = (eval_dataset([data.tfrecords[s] for s in val_list], exp.tile_px, batch, norm_fit), val_list,
               sum(data.tiles[s] for s in val_list))
    max_epoch = max(hp["epochs"])
    if hp["manual_early_stop_epoch"]:
        max_epoch = min(max_epoch, int(hp["manual_early_stop_epoch"]))
    early = bool(hp["early_stop"]) and val is not None
    if hp["early_stop"] and val is None:
        log.warning("early_stop needs validation data; it is off for this run (validation strategy 'none')")
    callbacks = [ValidationCallback(run_dir, model_name, sorted(set(hp["epochs"]) | {max_epoch}), early, val,
                                    model_type, data, [run_dir / "results_log.csv", Path(project.root) / "results_log.csv"],
                                    recalibrate=train_ds.take(RECALIBRATE_BATCHES) if opts["weights"] in (None, "none") else None)]
    if early:
        monitor = "val_accuracy" if hp["early_stop_method"] == "accuracy" else "val_loss"
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=int(hp["early_stop_patience"]),
                                                       mode="max" if monitor == "val_accuracy" else "min"))
    model.fit(train_ds, epochs=max_epoch, steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
              verbose=1 if sys.stderr.isatty() else 2)
    atomic_write_json(run_dir / "done.json", {"epochs": callbacks[0].saved})
    return run_dir


def train_from_experiment(project, exp, **overrides) -> list[Path]:
    """Train the classifier of `exp` on `project`'s tiles; overrides: epochs, batch_size, val_strategy,
    val_k_fold, val_k, val_fraction, seed, weights ('imagenet' | 'none' | path). Returns the model folders."""
    hp_over = {k: overrides.pop(k) for k in ("epochs", "batch_size") if overrides.get(k) is not None}
    hp = complete_hp({**exp.hp, **hp_over})
    opts = training_options(exp, overrides)
    model_type = model_type_of(hp)
    data = load_data(project, exp, model_type)
    norm_fit = norm_fit_for(hp["normalizer"], hp["normalizer_source"])
    patients = patients_table(data.patient, data.labels,
                              data.site if opts["val_strategy"] == "k-fold-preserved-site" else None)
    folds = get_splits(Path(project.root) / "splits.json", patients, opts["val_strategy"], int(opts["val_k_fold"]),
                       float(opts["val_fraction"]), model_type == "categorical", int(opts["seed"]))
    fold = dict(opts=opts, data=data, model_type=model_type, norm_fit=norm_fit)
    if opts["val_strategy"] == "none":
        return [train_fold(project, exp, hp, **fold, val_slides=[], k=None)]
    ks = list(range(1, len(folds) + 1)) if opts["val_strategy"] in K_FOLD_STRATEGIES else [None]
    if opts["val_k"]:
        bad = [k for k in opts["val_k"] if k not in ks]
        if bad or opts["val_strategy"] not in K_FOLD_STRATEGIES:
            raise UserError(f"val_k {opts['val_k']}: choose folds among {ks} (k-fold only)")
        ks = list(opts["val_k"])
    return [train_fold(project, exp, hp, **fold, val_slides=folds[(k or 1) - 1], k=k) for k in ks]
