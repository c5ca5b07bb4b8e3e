"""Classifier hyperparameters: slideflow 1.3.2 ModelParams defaults, completion and validation (spec 4.1)."""

from __future__ import annotations

from synthhist.errors import UserError

# Defaults of slideflow's ModelParams; a config's hp dict is applied on top (ModelParams.from_dict).
DEFAULT_HP = {
    "tile_px": 299, "tile_um": 302, "epochs": [3], "toplayer_epochs": 0, "model": "xception",
    "pooling": "max", "loss": "sparse_categorical_crossentropy", "learning_rate": 0.0001,
    "learning_rate_decay": 0, "learning_rate_decay_steps": 100000, "batch_size": 16,
    "hidden_layers": 0, "hidden_layer_width": 500, "optimizer": "Adam", "early_stop": False,
    "early_stop_patience": 0, "early_stop_method": "loss", "manual_early_stop_epoch": None,
    "manual_early_stop_batch": None, "training_balance": "auto", "validation_balance": "none",
    "trainable_layers": 0, "l1": 0, "l2": 0, "l1_dense": 0, "l2_dense": 0, "dropout": 0, "uq": False,
    "augment": "xyrj", "normalizer": None, "normalizer_source": None, "include_top": False,
    "drop_images": False,
}
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
