"""Load and save GAN networks: reference pickles, our native safetensors format, `hf:` references.

Native format (FORMAT_VERSION 1): a JSON config `<stem>.json` next to its weights `<stem>.safetensors`
(in a folder: `network.json` + `network.safetensors`). The weights file holds the state dicts of G_ema,
and optionally G and D, as `G_ema.<name>`, `G.<name>`, `D.<name>` in reference naming. The config holds
the constructor kwargs, class_names, tile_px, tile_um, augment_p and free-form `extra`. The JSON is written
last, so a config always points at complete weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from synthhist.errors import UserError

FORMAT = "synthhist-stylegan2"
FORMAT_VERSION = 1
DEFAULT_STEM = "network"


@dataclass
class GanNetwork:
    """A loaded generator (G_ema) with its metadata; G_train, D and augment_p only when training=True."""

    G: torch.nn.Module
    class_names: list[str] | None = None
    tile_px: int | None = None
    tile_um: float | None = None
    source: str = ""
    G_train: torch.nn.Module | None = None
    D: torch.nn.Module | None = None
    augment_p: float | None = None

    @property
    def c_dim(self) -> int:
        """Number of classes (0 for an unconditional network)."""
        return int(self.G.c_dim)


def _build(kind: str, kwargs: dict, state: dict[str, torch.Tensor], source: str) -> torch.nn.Module:
    from synthhist.gan import Discriminator, Generator

    try:
        net = (Generator if kind != "D" else Discriminator)(**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: unsupported {kind} configuration ({e})") from None
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[:3]}")
        raise UserError(f"{source}: the {kind} weights do not match its configuration ({detail})")
    net.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    return net


def _finish(net: torch.nn.Module, device: torch.device, train: bool) -> torch.nn.Module:
    net = net.to(device).train(train)
    net.requires_grad_(train)
    return net


def _class_names(labels, c_dim: int) -> list[str] | None:
    """outcome_labels {"0": name, ...} or a list -> list of names ordered by class index."""
    if isinstance(labels, dict):
        try:
            labels = [str(v) for _, v in sorted(labels.items(), key=lambda kv: int(kv[0]))]
        except ValueError:
            return None
    if not isinstance(labels, list) or len(labels) != c_dim or c_dim == 0:
        return None
    return [str(v) for v in labels]


# --------------------------------------------------------------------------------------- reference pickles

def load_reference_pickle(path: Path, device: torch.device, training: bool) -> GanNetwork:
    """Load a StyleGAN2-ADA / StyleGAN3 / slideflow pickle (never executing it) plus training_options.json."""
    from synthhist.gan.pickle_io import record_state_dict, read_network_pickle
    from synthhist.gan.reference_config import discriminator_kwargs, generator_kwargs

    data = read_network_pickle(path)
    G = _build("G_ema", generator_kwargs(data["G_ema"]), record_state_dict(data["G_ema"]), str(path))
    net = GanNetwork(G=_finish(G, device, False), source=str(path))
    if training:
        if data.get("G") is not None:
            G_train = _build("G", generator_kwargs(data["G"]), record_state_dict(data["G"]), str(path))
            net.G_train = _finish(G_train, device, True)
        if data.get("D") is not None:
            D = _build("D", discriminator_kwargs(data["D"]), record_state_dict(data["D"]), str(path))
            net.D = _finish(D, device, True)
        pipe = data.get("augment_pipe")
        if pipe is not None:
            p = (pipe.state.get("_buffers") or {}).get("p")
            net.augment_p = float(p) if p is not None else None
    opts = path.parent / "training_options.json"
    if opts.is_file():
        try:
            sf = json.loads(opts.read_text()).get("slideflow_kwargs") or {}
        except (OSError, ValueError, AttributeError):
            raise UserError(f"cannot read {opts}: not valid JSON") from None
        net.tile_px = int(sf["tile_px"]) if sf.get("tile_px") else None
        net.tile_um = float(sf["tile_um"]) if sf.get("tile_um") else None
        net.class_names = _class_names(sf.get("outcome_labels"), net.c_dim)
    return net


# --------------------------------------------------------------------------------------- native format

def _native_paths(path: Path) -> tuple[Path, Path]:
    """(config json, weights safetensors) for a native folder, .json or .safetensors path."""
    if path.is_dir():
        configs = sorted(path.glob("*.json"))
        named = path / f"{DEFAULT_STEM}.json"
        if named.is_file():
            config = named
        elif len(configs) == 1:
            config = configs[0]
        else:
            raise UserError(f"{path} holds no single native network config ({DEFAULT_STEM}.json)")
    else:
        config = path.with_suffix(".json")
    try:
        cfg = json.loads(config.read_text())
    except FileNotFoundError:
        raise UserError(f"network config not found: {config}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"network config {config} is corrupt ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise UserError(f"{config} is not a synthhist network config")
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{config} has format version {cfg.get('format_version')}, newer than this code "
                        f"({FORMAT_VERSION}): update synthetic-histology")
    return config, config.with_name(cfg.get("weights") or config.with_suffix(".safetensors").name)


def _read_weights(weights: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            return {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    except FileNotFoundError:
        raise UserError(f"network weights not found: {weights}") from None
    except Exception as e:
        raise UserError(f"network weights {weights} are corrupt ({type(e).__name__}: {e})") from None


def load_native(path: Path, device: torch.device, training: bool) -> GanNetwork:
    """Load our native format (folder, .json or .safetensors)."""
    config, weights = _native_paths(path)
    cfg = json.loads(config.read_text())
    src = str(config)
    G = _build("G_ema", cfg["G_kwargs"], _read_weights(weights, "G_ema."), src)
    net = GanNetwork(G=_finish(G, device, False), class_names=_class_names(cfg.get("class_names"), int(G.c_dim)),
                     tile_px=cfg.get("tile_px"), tile_um=cfg.get("tile_um"), source=src)
    if training:
        if "G" in cfg.get("networks", []):
            net.G_train = _finish(_build("G", cfg["G_kwargs"], _read_weights(weights, "G."), src), device, True)
        if "D" in cfg.get("networks", []):
            net.D = _finish(_build("D", cfg["D_kwargs"], _read_weights(weights, "D."), src), device, True)
        net.augment_p = cfg.get("augment_p")
    return net


def save_network(path: str | Path, G: torch.nn.Module, class_names: list[str] | None = None,
                 tile_px: int | None = None, tile_um: float | None = None, D: torch.nn.Module | None = None,
                 G_train: torch.nn.Module | None = None, extra: dict | None = None,
                 augment_p: float | None = None) -> Path:
    """Write G (=G_ema), and optionally G_train and D, in the native format; returns the config path.

    path is a folder (-> folder/network.json + .safetensors) or a `<stem>.json` / `<stem>.safetensors` path.
    """
    from safetensors.torch import save as st_save

    from synthhist.fileio import atomic_write_bytes, atomic_write_json

    path = Path(path)
    config = path.with_suffix(".json") if path.suffix in (".json", ".safetensors") else path / f"{DEFAULT_STEM}.json"
    weights = config.with_suffix(".safetensors")
    if class_names is not None and len(class_names) != int(G.c_dim):
        raise UserError(f"{len(class_names)} class names given for a network with {G.c_dim} classes")
    nets = {"G_ema": G, "G": G_train, "D": D}
    tensors, seen = {}, set()
    for name, net in nets.items():
        for k, v in (net.state_dict() if net is not None else {}).items():
            v = v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
            tensors[f"{name}.{k}"] = v.clone() if v.data_ptr() in seen else v  # safetensors refuses shared memory
            seen.add(v.data_ptr())
    cfg = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "weights": weights.name,
        "networks": [n for n, net in nets.items() if net is not None],
        "G_kwargs": G.init_kwargs, "D_kwargs": D.init_kwargs if D is not None else None,
        "class_names": list(class_names) if class_names is not None else None,
        "tile_px": int(tile_px) if tile_px else None, "tile_um": float(tile_um) if tile_um else None,
        "augment_p": float(augment_p) if augment_p is not None else None,
        "extra": extra or {},
    }
    try:
        json.dumps(cfg)
    except TypeError as e:
        raise UserError(f"network config is not JSON-serialisable ({e})") from None
    try:
        atomic_write_bytes(weights, st_save(tensors, metadata={"format": FORMAT}))
        atomic_write_json(config, cfg)
    except OSError as e:
        raise UserError(f"cannot write the network to {config.parent}: {e.strerror}") from None
    return config


# --------------------------------------------------------------------------------------- dispatch

def load_network(ref: str | Path, device: torch.device | str | None = None, training: bool = False) -> GanNetwork:
    """Load a network from a reference pickle, a native folder/.json/.safetensors, `hf:owner/repo[/file]` or `demo`."""
    from synthhist.device import resolve_device

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    ref = str(ref)
    if ref.startswith("hf:"):
        from synthhist.gan.hub import resolve_hf

        net = load_network(resolve_hf(ref), device, training)
        net.source = ref
        return net
    if ref == "demo":
        from synthhist.demo.models import demo_network_path

        net = load_native(demo_network_path(), device, training)
        net.source = ref
        return net
    path = Path(ref).expanduser()
    if not path.exists():
        raise UserError(f"network file not found: {path}")
    if path.is_file() and path.suffix not in (".json", ".safetensors"):
        return load_reference_pickle(path, device, training)
    return load_native(path, device, training)
