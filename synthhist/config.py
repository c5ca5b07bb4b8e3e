"""Experiment configs (experiment/*/*.json): load, validate and describe one experiment.

Schema (documented in experiment/README.md): every key is checked on load; an unknown key, a wrong type,
a bad value, a non-finite number or a missing local file raises UserError naming the key, e.g.
"lung_gan.json: gan_kwargs.batch must be an integer, got '32'".

The original repository's configs load as they are: without `kind` (inferred: `gan_kwargs` -> gan,
`hp` -> classifier), with `"backend": "tensorflow"`, with `hp.tile_px`/`hp.tile_um` repeating the top-level
values, with a subset of `hp` (the rest takes slideflow 1.3.2's ModelParams defaults, logged) and with
annotations/ROIs as paths beside the config (docs/slideflow.md §1.1, §4.1).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthhist.classifier.hparams import DEFAULT_HP, HP_TABLE, NONE, NUM
from synthhist.classifier.splits import VALIDATION_STRATEGIES
from synthhist.errors import UserError

log = logging.getLogger("synthhist")
KINDS = ("gan", "classifier")

# Key -> (accepted types, required). float keys accept ints too (JSON 1 vs 1.0).
TOP_KEYS = {
    "name": (str, True),
    "kind": (str, False),         # inferred from gan_kwargs / hp when absent (the original configs)
    "backend": (str, False),      # the original classifier configs: "tensorflow"
    "annotations": ((str, dict), True),
    "rois": ((str, dict, NONE), False),
    "slides": ((str, NONE), False),
    "outcome": (str, True),
    "tile_px": (int, True),
    "tile_um": (NUM, True),
    "tile_kwargs": (dict, False),
    "gan_kwargs": (dict, False),
    "hp": (dict, False),
    "train_kwargs": (dict, False),
    "description": (str, False),
}

RESOURCE_KEYS = {
    "url": (str, False),
    "path": (str, False),
    "sha256": (str, False),
    "size": (int, False),
    "filename": (str, False),
}

# Arguments of synthhist.wsi.extract.extract_tiles that a config may set.
TILE_KWARGS = {
    "qc": ((str, NONE), False),
    "roi_method": (str, False),
    "grayspace_fraction": (NUM, False),
    "grayspace_threshold": (NUM, False),
    "whitespace_fraction": (NUM, False),
    "whitespace_threshold": (NUM, False),
    "img_format": (str, False),
}
TILE_CHOICES = {"qc": (None, "otsu", "blur", "both"), "roi_method": ("inside", "outside", "auto", "ignore"),
                "img_format": ("png", "jpg")}

# StyleGAN2 training settings (stylegan2.md 2.1, 2.5). model='stylegan3' + cfg='stylegan2' is what the paper
# passed to slideflow: the stylegan3-slideflow fork's training code running the StyleGAN2 architecture.
GAN_KWARGS = {
    "model": (str, False),
    "cfg": (str, False),
    "gamma": (NUM, True),
    "batch": (int, True),
    "gpus": (int, True),
    "kimg": (int, True),
    "batch_gpu": (int, False),
    "glr": (NUM, False),
    "dlr": (NUM, False),
    "map": (int, False),
    "map_depth": (int, False),    # StyleGAN3's name for map
    "cbase": (int, False),
    "cmax": (int, False),
    "mbstd_group": (int, False),
    "diversity": (NUM, False),    # ours: weight of the mode-seeking hinge (gan/train/loss.py), 0 in the paper
    "mismatch": (NUM, False),     # ours: weight of D's real-image-wrong-label term (gan/train/loss.py), 0 in the paper
    "noise": (bool, False),       # ours: false trains G without its noise inputs (gan/train/loss.py), true in the paper
    "aug": (str, False),
    "target": (NUM, False),
    "ada_kimg": (NUM, False),     # ours: kimg for ADA's p to move by 1 (the reference loop's ada_kimg, 500)
    "mirror": (bool, False),
    "tick": (int, False),
    "snap": (int, False),
    "seed": (int, False),
}
GAN_CHOICES = {"model": ("stylegan3",), "cfg": ("stylegan2",), "aug": ("ada", "fixed", "noaug")}

# slideflow 1.3.2 ModelParams (docs/slideflow.md §4.1): one table, in classifier/hparams.py. Keys left out
# take its defaults; tile_px/tile_um come from the top level (hp may repeat them, equal).
HP_KEYS = {key: (types, False) for key, (_, types) in HP_TABLE.items()}
HP_CHOICES = {"training_balance": ("category", "patient", "slide", "tile", "none", "auto"),
              "validation_balance": ("category", "patient", "slide", "tile", "none", "auto"),
              "early_stop_method": ("loss", "accuracy")}

# Validation settings of the classifier's training call; {} = the paper's (3-fold CV, slideflow default).
TRAIN_KWARGS = {
    "val_strategy": (str, False),
    "val_k_fold": (int, False),
    "val_k": ((int, list), False),
    "val_fraction": (NUM, False),
    "seed": (int, False),
}
TRAIN_CHOICES = {"val_strategy": VALIDATION_STRATEGIES}
BACKENDS = ("tensorflow",)

@dataclass(frozen=True)
class Resource:
    """A file the experiment needs: a URL (with sha256) to download, or a local path."""

    filename: str                 # name inside the project folder
    url: str | None = None
    path: Path | None = None      # absolute, resolved against the config's folder
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Experiment:
    """One validated experiment config."""

    name: str
    kind: str                     # 'gan' | 'classifier'
    annotations: Resource
    outcome: str
    tile_px: int
    tile_um: int | float
    tile_kwargs: dict[str, Any]   # extract_tiles keyword arguments (unset: its defaults)
    gan_kwargs: dict[str, Any] = field(default_factory=dict)
    hp: dict[str, Any] = field(default_factory=dict)
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    rois: Resource | None = None
    slides: Path | None = None    # a local folder of slides, searched besides <project>/slides
    base_dir: Path = Path(".")    # folder of the config file
    path: Path | None = None      # the config file
    description: str = ""

    @property
    def tile_label(self) -> str:
        """Folder label of this tile size, e.g. '512px_400um'."""
        return f"{self.tile_px}px_{self.tile_um:g}um"


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment config; any problem raises UserError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"experiment config not found: {path}")
    try:
        raw = json.loads(path.read_text())  # NaN / Infinity parse, and are refused by key in parse_experiment
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path.name}: not valid JSON ({e})") from None
    return parse_experiment(raw, path.resolve().parent, where=path.name, path=path.resolve())


def parse_experiment(raw: Any, base_dir: Path, where: str = "config", path: Path | None = None) -> Experiment:
    """Validate a config dict (already parsed JSON); relative paths resolve against base_dir."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: the config must be a JSON object")
    _finite(raw, where, "")
    _check(raw, TOP_KEYS, where, "")
    kind = _choice(raw, "kind", KINDS, where, "") or _infer_kind(raw, where)
    _choice(raw, "backend", BACKENDS, where, "")
    name = raw["name"]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserError(f"{where}: name must be letters, digits, '_', '-', '.', got {name!r}")
    for key in ("tile_px", "tile_um"):
        if raw[key] <= 0:
            raise UserError(f"{where}: {key} must be positive, got {raw[key]}")

    tile_kwargs = dict(raw.get("tile_kwargs", {}))
    _check(tile_kwargs, TILE_KWARGS, where, "tile_kwargs.")
    for key, choices in TILE_CHOICES.items():
        _choice(tile_kwargs, key, choices, where, "tile_kwargs.")
    for key in ("grayspace_fraction", "whitespace_fraction"):
        if key in tile_kwargs and not 0 <= tile_kwargs[key] <= 1:
            raise UserError(f"{where}: tile_kwargs.{key} must be in [0, 1], got {tile_kwargs[key]}")

    gan_kwargs, hp, train_kwargs = raw.get("gan_kwargs"), raw.get("hp"), raw.get("train_kwargs")
    if kind == "gan":
        if gan_kwargs is None:
            raise UserError(f"{where}: gan_kwargs is required for kind 'gan'")
        for key in ("hp", "train_kwargs"):
            if key in raw:
                raise UserError(f"{where}: {key} belongs in a classifier config, not kind 'gan'")
        _check(gan_kwargs, GAN_KWARGS, where, "gan_kwargs.")
        for key, choices in GAN_CHOICES.items():
            _choice(gan_kwargs, key, choices, where, "gan_kwargs.")
        if "map" in gan_kwargs and "map_depth" in gan_kwargs:
            raise UserError(f"{where}: gan_kwargs.map and gan_kwargs.map_depth are the same setting: give one")
        for key in ("gamma", "batch", "gpus", "kimg"):
            if gan_kwargs[key] <= 0:
                raise UserError(f"{where}: gan_kwargs.{key} must be positive, got {gan_kwargs[key]}")
        if gan_kwargs["batch"] % gan_kwargs["gpus"]:
            raise UserError(f"{where}: gan_kwargs.batch ({gan_kwargs['batch']}) must be a multiple of gpus ({gan_kwargs['gpus']})")
    else:
        if hp is None:
            raise UserError(f"{where}: hp is required for kind 'classifier'")
        if gan_kwargs is not None:
            raise UserError(f"{where}: gan_kwargs belongs in a GAN config, not kind 'classifier'")
        _check(hp, HP_KEYS, where, "hp.")
        hp = _complete_hp(hp, raw, where)
        for key, choices in HP_CHOICES.items():
            _choice(hp, key, choices, where, "hp.")
        if not hp["epochs"] or not all(isinstance(e, int) and not isinstance(e, bool) and e > 0 for e in hp["epochs"]):
            raise UserError(f"{where}: hp.epochs must be a non-empty list of positive integers, got {hp['epochs']!r}")
        _check(train_kwargs or {}, TRAIN_KWARGS, where, "train_kwargs.")
        _choice(train_kwargs or {}, "val_strategy", TRAIN_CHOICES["val_strategy"], where, "train_kwargs.")

    return Experiment(
        name=name, kind=kind, outcome=raw["outcome"], tile_px=raw["tile_px"], tile_um=raw["tile_um"],
        annotations=_resource(raw["annotations"], base_dir, where, "annotations"),
        rois=None if raw.get("rois") is None else _resource(raw["rois"], base_dir, where, "rois"),
        slides=_folder(raw.get("slides"), base_dir, where, "slides"),
        tile_kwargs=tile_kwargs, gan_kwargs=dict(gan_kwargs or {}), hp=dict(hp or {}),
        train_kwargs=dict(train_kwargs or {}), base_dir=base_dir, path=path, description=raw.get("description", ""),
    )


def _infer_kind(raw: dict, where: str) -> str:
    """'gan' for a config with gan_kwargs, 'classifier' for one with hp (the original configs have no kind)."""
    has_gan, has_hp = "gan_kwargs" in raw, "hp" in raw
    if has_gan == has_hp:
        what = "both gan_kwargs and hp" if has_gan else "neither gan_kwargs nor hp"
        raise UserError(f"{where}: cannot tell the kind of config: it has {what} (set kind to gan or classifier)")
    return "gan" if has_gan else "classifier"


def _complete_hp(hp: dict, raw: dict, where: str) -> dict:
    """hp with tile_px/tile_um from the top level and every key left out set to its slideflow default (logged)."""
    for key in ("tile_px", "tile_um"):
        if key in hp and hp[key] != raw[key]:
            raise UserError(f"{where}: hp.{key} ({hp[key]}) differs from the top-level {key} ({raw[key]}): "
                            "they must be equal")
    missing = [k for k in DEFAULT_HP if k not in hp and k not in ("tile_px", "tile_um")]
    if missing:
        log.warning(f"{where}: hp keys not in the config take slideflow's defaults: "
                 + ", ".join(f"{k}={json.dumps(DEFAULT_HP[k])}" for k in missing))
    return {**copy.deepcopy(DEFAULT_HP), **hp, "tile_px": raw["tile_px"], "tile_um": raw["tile_um"]}


def _finite(value: Any, where: str, key: str) -> None:
    """Reject NaN and +-Infinity anywhere in a config (parsed JSON or a dict built in Python)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: {key or 'config'} must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, where, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite(v, where, f"{key}[{i}]")


def _folder(value: str | None, base_dir: Path, where: str, key: str) -> Path | None:
    """An existing local folder named relative to the config's folder (None stays None)."""
    if value is None:
        return None
    folder = (base_dir / value).resolve()
    if not folder.is_dir():
        raise UserError(f"{where}: {key}: folder not found: {folder}")
    return folder


def _resource(value: str | dict, base_dir: Path, where: str, key: str) -> Resource:
    """A Resource from a path string or a {url|path, sha256, size, filename} object."""
    spec = {"path": value} if isinstance(value, str) else dict(value)
    _check(spec, RESOURCE_KEYS, where, f"{key}.")
    if ("url" in spec) == ("path" in spec):
        raise UserError(f"{where}: {key} needs exactly one of 'url' or 'path'")
    sha = spec.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise UserError(f"{where}: {key}.sha256 must be 64 lowercase hex digits")
    if "url" in spec:
        if not re.match(r"https?://", spec["url"]):
            raise UserError(f"{where}: {key}.url must start with http:// or https://, got {spec['url']!r}")
        if sha is None:
            raise UserError(f"{where}: {key}.sha256 is required with {key}.url")
        local, default_name = None, spec["url"].rstrip("/").rsplit("/", 1)[-1]
    else:
        local = (base_dir / spec["path"]).resolve()
        if not local.is_file():
            raise UserError(f"{where}: {key}.path: file not found: {local}")
        default_name = local.name
    filename = spec.get("filename", default_name)
    if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        raise UserError(f"{where}: {key}.filename must be a plain file name, got {filename!r}")
    return Resource(filename=filename, url=spec.get("url"), path=local, sha256=sha, size=spec.get("size"))


def _check(d: dict, schema: dict, where: str, prefix: str) -> None:
    """Reject unknown keys, missing required keys and wrong types."""
    for key in d:
        if key not in schema:
            raise UserError(f"{where}: unknown key {prefix}{key} (allowed: {', '.join(schema)})")
    for key, (types, required) in schema.items():
        if key not in d:
            if required:
                raise UserError(f"{where}: missing key {prefix}{key}")
            continue
        types = types if isinstance(types, tuple) else (types,)
        value = d[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join(_TYPE_NAMES[t] for t in types if not (t is int and float in types))
            raise UserError(f"{where}: {prefix}{key} must be {names}, got {json.dumps(value)}")


def _choice(d: dict, key: str, choices: tuple, where: str, prefix: str) -> Any:
    """Check that d[key] (when present) is one of choices."""
    if key in d and d[key] not in choices:
        raise UserError(f"{where}: {prefix}{key} must be one of {', '.join(map(str, choices))}; got {d[key]!r}")
    return d.get(key)


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false", dict: "an object",
               list: "a list", NONE: "null"}
