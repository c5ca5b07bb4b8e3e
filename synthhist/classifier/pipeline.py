"""tf.data input pipeline for classifier training from slideflow-format TFRecords (docs/slideflow.md §4.3, §4.5):
per-slide repeated readers mixed by sampling weights -> decode -> normalise -> augment -> standardise -> batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from synthhist.classifier.preprocess import augment, reinhard_fast, standardize
from synthhist.errors import UserError
from synthhist.wsi.tfrecord import tf_records

_FEATURES = {
    "image_raw": tf.io.FixedLenFeature([], tf.string),
    "slide": tf.io.FixedLenFeature([], tf.string),
    "loc_x": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "loc_y": tf.io.FixedLenFeature([], tf.int64, default_value=0),
}


def parse_record(record: tf.Tensor, tile_px: int) -> dict:
    """Serialized tf.train.Example -> {image uint8 [px,px,3], slide, loc_x, loc_y}."""
    f = tf.io.parse_single_example(record, _FEATURES)
    image = tf.io.decode_image(f["image_raw"], channels=3, expand_animations=False)
    image.set_shape([tile_px, tile_px, 3])
    return {"image": image, "slide": f["slide"], "loc_x": f["loc_x"], "loc_y": f["loc_y"]}


def count_tiles(paths: list[Path]) -> dict[str, int]:
    """Tiles per TFRecord (by slide name): from manifest.json ({file: {'total': n}}) where listed, else counted."""
    counts = {}
    manifests: dict[Path, dict] = {}
    for p in paths:
        mpath = p.parent / "manifest.json"
        if mpath not in manifests:
            try:
                manifests[mpath] = json.loads(mpath.read_text()) if mpath.exists() else {}
            except ValueError:
                manifests[mpath] = {}
        entry = manifests[mpath].get(p.name)
        if isinstance(entry, dict) and isinstance(entry.get("total"), int):
            counts[p.stem] = entry["total"]
        else:
            counts[p.stem] = int(tf_records(p).reduce(np.int64(0), lambda n, _: n + 1))
    return counts


def balance_weights(slides: list[str], method: str, slide_label: dict, slide_patient: dict,
                    tiles: dict[str, int]) -> list[float] | None:
    """Per-slide sampling weights: 'category' (classes equally), 'patient' (patients equally), 'slide' /
    'none' (slides equally), 'tile' (tiles equally)."""
    if method in ("none", "slide"):
        return None
    if method == "tile":
        w = np.array([tiles[s] for s in slides], float)
        return list(w / w.sum())
    if method == "category":
        n = {c: sum(slide_label[s] == c for s in slides) for c in set(slide_label[s] for s in slides)}
        prob = {c: min(n.values()) / v for c, v in n.items()}
        w = np.array([prob[slide_label[s]] for s in slides])
    elif method == "patient":
        per_pt = {}
        for s in slides:
            per_pt[slide_patient[s]] = per_pt.get(slide_patient[s], 0) + 1
        w = np.array([1.0 / (len(per_pt) * per_pt[slide_patient[s]]) for s in slides])
    else:
        raise UserError(f"balance {method!r}: use category, patient, slide, tile or none")
    return list(w / w.sum())


def _normalise_batch(images: tf.Tensor, norm_fit: dict | None) -> tf.Tensor:
    return reinhard_fast(images, norm_fit["target_means"], norm_fit["target_stds"]) if norm_fit else images


def train_dataset(paths: list[Path], labels: np.ndarray, weights: list[float] | None, tile_px: int,
                  batch_size: int, norm_fit: dict | None, augment_letters: str, seed: int) -> tf.data.Dataset:
    """Infinite training stream of (float32 [B,px,px,3], label [B] or [B,n]) batches."""
    per_slide = [tf_records(p, repeat=True).map(lambda r, i=i: (r, i)) for i, p in enumerate(paths)]
    ds = tf.data.Dataset.sample_from_datasets(per_slide, weights=weights, seed=seed)
    table = tf.constant(labels)
    ds = ds.map(lambda r, i: (parse_record(r, tile_px)["image"], tf.gather(table, i)),
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size).map(lambda x, y: (_normalise_batch(x, norm_fit), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch().map(lambda x, y: (augment(x, augment_letters), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True).map(lambda x, y: (standardize(x), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(paths: list[Path], tile_px: int, batch_size: int, norm_fit: dict | None) -> tf.data.Dataset:
    """One pass over all tiles in order: (float32 [B,px,px,3], slide index [B], loc_x [B], loc_y [B])."""
    per_slide = [tf_records(p).map(lambda r, i=i: (r, i)) for i, p in enumerate(paths)]
    ds = per_slide[0]
    for d in per_slide[1:]:
        ds = ds.concatenate(d)

    def parse(r, i):
        f = parse_record(r, tile_px)
        return f["image"], i, f["loc_x"], f["loc_y"]
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    ds = ds.map(lambda x, i, lx, ly: (standardize(_normalise_batch(x, norm_fit)), i, lx, ly),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
