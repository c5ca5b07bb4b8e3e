"""Tiny two-class tile data for classifier tests: 'fine' (pixel noise) vs 'coarse' (8-px blobs) textures of the
same mean H&E-like colour, so they stay apart after Reinhard normalisation and standardisation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from synthhist.wsi.tfrecord import update_manifest, write_tfrecord

PINK = np.array([200, 120, 170], np.float32)
KINDS = ("coarse", "fine")  # sorted: coarse -> class 0, fine -> class 1


def texture(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [h,w,3]: PINK + noise, per pixel ('fine') or in 8x8 blocks ('coarse')."""
    if kind == "fine":
        noise = rng.normal(0, 40, (h, w, 1)) * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 10, (h, w, 3))
    else:
        small = rng.normal(0, 40, ((h + 7) // 8, (w + 7) // 8, 1)) * np.array([1.0, 0.8, 0.6])
        noise = np.kron(small, np.ones((8, 8, 1)))[:h, :w] + rng.normal(0, 10, (h, w, 3))
    return np.clip(PINK + noise, 0, 255).astype(np.uint8)


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def write_cohort(root: Path, n_per_class: int = 4, tiles: int = 32, px: int = 72, seed: int = 0,
                 single_class: bool = False) -> dict[str, str]:
    """labels.csv (patient, slide, kind, score) and TFRecords in root/tfrecords/<px>px_<px/2>um; slide -> kind."""
    rng = np.random.default_rng(seed)
    tf_dir = root / "tfrecords" / f"{px}px_{px // 2}um"
    tf_dir.mkdir(parents=True, exist_ok=True)
    kinds = {f"slide{c}{i}": ("fine" if single_class else kind) for c, kind in enumerate(KINDS) for i in range(n_per_class)}
    for slide, kind in kinds.items():
        write_tfrecord(tf_dir / f"{slide}.tfrecords",
                       [{"slide": slide, "image_raw": png(texture(kind, px, px, rng)), "loc_x": i, "loc_y": 0}
                        for i in range(tiles)])
    update_manifest(tf_dir)
    write_labels(root, kinds)
    return kinds


def write_config(path: Path, outcome: str = "kind", px: int = 72, **hp) -> Path:
    """A classifier experiment config for the cohort of write_cohort (annotations next to the config)."""
    linear = outcome == "score"
    cfg = {
        "name": "clf_test", "kind": "classifier", "annotations": {"path": "labels.csv"}, "outcome": outcome,
        "tile_px": px, "tile_um": px // 2,
        "tile_kwargs": {"qc": None, "roi_method": "ignore", "grayspace_fraction": 1, "img_format": "png"},
        "hp": {"model": "xception", "include_top": False, "pooling": "avg", "hidden_layers": 1,
               "hidden_layer_width": 32, "dropout": 0.1,
               "loss": "mean_squared_error" if linear else "sparse_categorical_crossentropy",
               "optimizer": "Adam", "learning_rate": 0.001, "learning_rate_decay": 0.98,
               "learning_rate_decay_steps": 512, "batch_size": 16, "epochs": [1], "augment": "xyrjb",
               "normalizer": "reinhard_fast", "normalizer_source": None,
               "training_balance": "patient" if linear else "category", "validation_balance": "none",
               "early_stop": False, "early_stop_method": "loss", "early_stop_patience": 0,
               "manual_early_stop_batch": None, "manual_early_stop_epoch": None, "l1": 0.0, "l2": 0.0,
               "l1_dense": 0.0, "l2_dense": 0.0, "trainable_layers": 0, "toplayer_epochs": 0,
               "drop_images": False, "uq": False, **hp},
        "train_kwargs": {},
    }
    path.write_text(json.dumps(cfg, indent=2))
    return path


def write_slides(root: Path, kinds: dict[str, str], grid: int = 5, px: int = 72, seed: int = 0) -> None:
    """root/slides/<slide>.tiff: grid x grid tiles of px (at 0.5 um/px, so tile_um = px/2) of the slide's texture."""
    from synthhist.wsi.synthetic import write_pyramid_tiff

    rng = np.random.default_rng(seed)
    (root / "slides").mkdir(parents=True, exist_ok=True)
    for slide, kind in kinds.items():
        write_pyramid_tiff(root / "slides" / f"{slide}.tiff", texture(kind, grid * px, grid * px, rng), 0.5,
                           downsamples=(1, 4))


def write_labels(root: Path, kinds: dict[str, str]) -> None:
    """root/labels.csv with patient, slide, kind, score (fine = 1.0, coarse = -1.0)."""
    lines = ["patient,slide,kind,score"] + [f"pt-{s},{s},{k},{1.0 if k == 'fine' else -1.0}" for s, k in kinds.items()]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def write_keras2_savedmodel(path: Path, model, side_effect=None) -> Path:
    """A TF SavedModel of a Keras 3 `model` laid out as Keras 2's `model.save` writes it (what slideflow saves):
    the checkpoint's object graph has `layer-<i>` / `layer_with_weights-<i>` children per model, `kernel`, `bias`
    ... per leaf layer and a root `variables` list; the serving signature runs the model, and first
    `side_effect()` when given (a crafted folder)."""
    import keras
    import tensorflow as tf

    def node(m):
        t = tf.__internal__.tracking.AutoTrackable()
        weighted = 0
        for i, layer in enumerate(m.layers):
            if isinstance(layer, keras.Model):
                child = node(layer)
            else:
                child = tf.__internal__.tracking.AutoTrackable()
                for w in layer.weights:  # Keras 2 named a depthwise convolution's kernel depthwise_kernel
                    depthwise = type(layer).__name__ == "DepthwiseConv2D" and w.name == "kernel"
                    setattr(child, "depthwise_kernel" if depthwise else w.name, w.value)
            setattr(t, f"layer-{i}", child)
            if layer.weights:
                setattr(t, f"layer_with_weights-{weighted}", child)
                weighted += 1
        return t

    root = node(model)
    root.variables = [v.value for v in model.weights]
    px = model.input_shape[1]

    @tf.function(input_signature=[tf.TensorSpec([None, px, px, 3], tf.float32, name="tile_image")])
    def serve(x):
        if side_effect is not None:
            side_effect()
        return {model.output_names[0] if hasattr(model, "output_names") else "output": model(x, training=False)}

    root.serve = serve
    tf.saved_model.save(root, str(path), signatures={"serving_default": serve})
    return path
