"""Classifier hyperparameters: slideflow 1.3.2 ModelParams defaults, completion, validation (docs/slideflow.md §4.1)."""

from __future__ import annotations

from synthhist.errors import UserError

NUM = (int, float)
NONE = type(None)

# The one table of classifier hyperparameters: key -> (slideflow 1.3.2 ModelParams default, accepted JSON types).
# A config's hp dict is applied on top of the defaults (ModelParams.from_dict); float keys accept ints too.
HP_TABLE = {
    "tile_px": (299, int), "tile_um": (302, NUM), "epochs": ([3], list), "toplayer_epochs": (0, int),
    "model": ("xception", str), "pooling": ("max", str), "loss": ("sparse_categorical_crossentropy", str),
    "learning_rate": (0.0001, NUM), "learning_rate_decay": (0, NUM), "learning_rate_decay_steps": (100000, int),
    "batch_size": (16, int), "hidden_layers": (0, int), "hidden_layer_width": (500, int), "optimizer": ("Adam", str),
    "early_stop": (False, bool), "early_stop_patience": (0, int), "early_stop_method": ("loss", str),
    "manual_early_stop_epoch": (None, (int, NONE)), "manual_early_stop_batch": (None, (int, NONE)),
    "training_balance": ("auto", str), "validation_balance": ("none", str), "trainable_layers": (0, int),
    "l1": (0, NUM), "l2": (0, NUM), "l1_dense": (0, NUM), "l2_dense": (0, NUM), "dropout": (0, NUM),
    "uq": (False, bool), "augment": ("xyrj", (str, NONE)), "normalizer": (None, (str, NONE)),
    "normalizer_source": (None, (str, NONE)), "include_top": (False, bool), "drop_images": (False, bool),
}
DEFAULT_HP = {k: default for k, (default, _) in HP_TABLE.items()}
CATEGORICAL_LOSSES = ("sparse_categorical_crossentropy",)
LINEAR_LOSSES = ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
                 "mean_squared_logarithmic_error", "squared_hinge", "hinge", "logcosh")
BALANCES = ("category", "patient", "slide", "tile", "none")


def model_type_of(hp: dict) -> str:
    """'linear' when hp.loss is a regression loss, else 'categorical'."""
    return "linear" if hp.get("loss") in LINEAR_LOSSES else "categorical"


def complete_hp(hp: dict) -> dict:
    """Defaults + hp, validated the way slideflow does (epochs as a list, balance 'auto' resolved)."""
    unknown = set(hp) - set(DEFAULT_HP)
    if unknown:
        raise UserError(f"unknown hp key(s) {sorted(unknown)}; known: {sorted(DEFAULT_HP)}")
    out = {**DEFAULT_HP, **hp}
    out["epochs"] = [int(e) for e in (out["epochs"] if isinstance(out["epochs"], (list, tuple)) else [out["epochs"]])]
    if not out["epochs"] or min(out["epochs"]) < 1:
        raise UserError(f"hp epochs {out['epochs']}: need positive epoch numbers")
    if out["loss"] not in CATEGORICAL_LOSSES + LINEAR_LOSSES:
        raise UserError(f"hp loss {out['loss']!r} not supported; use one of {CATEGORICAL_LOSSES + LINEAR_LOSSES}")
    linear = model_type_of(out) == "linear"
    if out["training_balance"] == "auto":
        out["training_balance"] = "patient" if linear else "category"
    for key in ("training_balance", "validation_balance"):
        if out[key] not in BALANCES:
            raise UserError(f"hp {key} {out[key]!r}: use one of {BALANCES}")
    if linear and out["training_balance"] == "category":
        raise UserError("hp training_balance 'category' needs a categorical loss (this model is linear)")
    if out["early_stop_method"] not in ("loss", "accuracy"):
        raise UserError(f"hp early_stop_method {out['early_stop_method']!r}: use 'loss' or 'accuracy'")
    if linear and out["early_stop"] and out["early_stop_method"] == "accuracy":
        raise UserError("hp early_stop_method 'accuracy' needs a categorical loss (this model is linear)")
    if out["include_top"]:
        raise UserError("hp include_top true is not supported (the paper's models use include_top false)")
    if out["toplayer_epochs"] or out["trainable_layers"] or out["manual_early_stop_batch"] or out["drop_images"]:
        raise UserError("hp toplayer_epochs, trainable_layers, manual_early_stop_batch and drop_images "
                        "are not supported (leave them 0 / null / false)")
    if out["pooling"] not in ("avg", "max"):
        raise UserError(f"hp pooling {out['pooling']!r}: use 'avg' or 'max'")
    if int(out["batch_size"]) < 1:
        raise UserError(f"hp batch_size {out['batch_size']}: must be >= 1")
    return out
