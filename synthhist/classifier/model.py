"""The paper's classifier network (slideflow 1.3.2 layout, docs/slideflow.md §4.2): a keras.applications base
without top, post_convolution, dropout, hidden Dense+BN+Dropout blocks, and a softmax (categorical) or linear output."""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from synthhist.errors import UserError

log = logging.getLogger("synthhist")

# hp.model -> (keras.applications constructor, smallest tile_px it accepts)
ARCHITECTURES = {
    "xception": ("Xception", 71),
    "inception": ("InceptionV3", 75),
    "resnet50": ("ResNet50", 32),
    "mobilenet": ("MobileNet", 32),
    "mobilenet_v2": ("MobileNetV2", 32),
    "densenet_121": ("DenseNet121", 32),
}
_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


def base_network(name: str, tile_px: int, pooling: str, weights: str | None = "imagenet") -> keras.Model:
    """keras.applications base (include_top=False) with 'imagenet' (falls back to random init when it cannot
    be fetched), a local weights file, or None (random init)."""
    if name not in ARCHITECTURES:
        raise UserError(f"hp model {name!r} not supported; use one of {sorted(ARCHITECTURES)}")
    ctor_name, min_px = ARCHITECTURES[name]
    if tile_px < min_px:
        raise UserError(f"tile_px {tile_px} is too small for {name} (needs >= {min_px})")
    ctor = getattr(keras.applications, ctor_name)
    kwargs = dict(include_top=False, pooling=pooling, input_shape=(tile_px, tile_px, 3))
    if weights in (None, "none"):
        return ctor(weights=None, **kwargs)
    if weights == "imagenet":
        try:
            return ctor(weights="imagenet", **kwargs)
        except Exception as e:  # offline, blocked URL, corrupt cache: keras raises plain Exception
            log.warning(f"NOTE: ImageNet weights for {name} could not be loaded ({str(e).splitlines()[0][:160]}); "
                        "training starts from RANDOM initialisation. Pass --weights PATH to a local "
                        f"{ctor_name} no-top weights file to use pretrained weights.")
            return ctor(weights=None, **kwargs)
    if not Path(weights).is_file():
        raise UserError(f"weights file {weights} does not exist")
    try:
        return ctor(weights=str(weights), **kwargs)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot load {weights} into {ctor_name} (include_top=False): {str(e).splitlines()[0]}") from None


def _regularise_base(base: keras.Model, l1: float, l2: float) -> None:
    """Attach an L1/L2 penalty to every kernel of the base network (hp l1, l2)."""
    reg = keras.regularizers.L1L2(l1=float(l1), l2=float(l2))
    for layer in base._flatten_layers(include_self=False):
        for attr in _KERNELS:
            var = getattr(layer, attr, None)
            if isinstance(var, keras.Variable) and var.trainable:
                var.regularizer = reg


def build_model(hp: dict, tile_px: int, n_out: int, model_type: str, weights: str | None = "imagenet") -> keras.Model:
    """Network of docs/slideflow.md §4.2 for completed hp: 'tile_image' [N,px,px,3] float -> [N, n_out] float32."""
    base = base_network(hp["model"], tile_px, hp["pooling"], weights)
    if hp["l1"] or hp["l2"]:
        _regularise_base(base, hp["l1"], hp["l2"])
    dense_reg = keras.regularizers.L1L2(l1=float(hp["l1_dense"]), l2=float(hp["l2_dense"])) \
        if (hp["l1_dense"] or hp["l2_dense"]) else None
    inp = keras.Input((tile_px, tile_px, 3), name="tile_image")
    x = base(inp)                                                             # [N, features]
    x = keras.layers.Activation("linear", name="post_convolution")(x)
    if hp["dropout"]:
        x = keras.layers.Dropout(hp["dropout"])(x)
    for i in range(int(hp["hidden_layers"])):
        x = keras.layers.Dense(int(hp["hidden_layer_width"]), activation="relu", name=f"hidden_{i}",
                               kernel_regularizer=dense_reg)(x)
        x = keras.layers.BatchNormalization()(x)
        if hp["dropout"]:
            x = keras.layers.Dropout(hp["dropout"])(x)
    if model_type == "categorical":
        x = keras.layers.Dense(n_out, name="prelogits-0")(x)
        out = keras.layers.Activation("softmax", dtype="float32", name="out-0")(x)
    else:
        x = keras.layers.Dense(n_out, name="prelogits")(x)
        out = keras.layers.Activation("linear", dtype="float32", name="output")(x)
    return keras.Model(inp, out, name=hp["model"])


def compile_model(model: keras.Model, hp: dict, model_type: str) -> None:
    """Compile with hp.optimizer (Adam) on a staircase ExponentialDecay schedule and the hp loss."""
    lr = float(hp["learning_rate"])
    if hp["learning_rate_decay"] not in (0, 1, None):
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=int(hp["learning_rate_decay_steps"]),
                                                         decay_rate=float(hp["learning_rate_decay"]), staircase=True)
    try:
        opt = keras.optimizers.get({"class_name": hp["optimizer"], "config": {"learning_rate": lr}})
    except (ValueError, TypeError):
        raise UserError(f"hp optimizer {hp['optimizer']!r} is not a Keras optimizer") from None
    metrics = ["accuracy"] if model_type == "categorical" else ["mse"]
    model.compile(optimizer=opt, loss=hp["loss"], metrics=metrics)
