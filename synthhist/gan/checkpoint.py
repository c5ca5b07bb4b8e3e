"""Load and save GAN networks: reference pickles and our native safetensors format (references: synthhist.refs).

Native format (FORMAT_VERSION 1): a JSON config `<stem>.json` next to its weights `<stem>.safetensors`
(in a folder: `network.json` + `network.safetensors`). The weights file holds the state dicts of G_ema,
and optionally G and D, as `G_ema.<name>`, `G.<name>`, `D.<name>` in reference naming. The config holds
the constructor kwargs, class_names, tile_px, tile_um, augment_p and free-form `extra`. The JSON is written
last, so a config always points at complete weights.

Loading never trusts a file: every file is opened at its real path (network_files lists them, so callers can
confine them), configs are size-bounded JSON with sane numbers, and a network is built only after its
expected state-dict shapes (computed on the meta device, allocating nothing) match the weights in the file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from synthhist.errors import UserError

FORMAT = "synthhist-stylegan2"
FORMAT_VERSION = 1
DEFAULT_STEM = "network"
MAX_CONFIG_BYTES = 1 << 20  # network.json / training_options.json are a few kB
MAX_VALUE = 1 << 20  # no constructor number of a StyleGAN2 comes near this (channel_base is 32768)
MAX_LAYERS = 64  # mapping layers (8 in the paper)
SLACK = 1 << 20  # weight bytes allowed beyond the file size


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


def _check_kwargs(kind: str, kwargs, source: str) -> None:
    """Refuse constructor kwargs with absurd numbers before anything is built from them."""
    if not isinstance(kwargs, dict):
        raise UserError(f"{source}: the {kind} configuration is not a dict")
    todo = [(kwargs, 0)]
    while todo:
        d, depth = todo.pop()
        for k, v in d.items():
            if isinstance(v, dict) and depth == 0:
                todo.append((v, 1))
            elif isinstance(v, bool) or v is None or (isinstance(v, str) and len(v) <= 64):
                continue
            elif not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_VALUE:
                raise UserError(f"{source}: {kind} configuration value {k}={str(v)[:40]} is not a sane number")
    res = kwargs.get("img_resolution")
    if not (type(res) is int and 4 <= res <= 1 << 14 and res & (res - 1) == 0):
        raise UserError(f"{source}: {kind} img_resolution {str(res)[:40]} is not a power of two from 4 to 16384")
    mapping = kwargs.get("mapping_kwargs") or {}
    layers = mapping.get("num_layers", 8) if isinstance(mapping, dict) else None
    if not (type(layers) is int and 0 <= layers <= MAX_LAYERS):
        raise UserError(f"{source}: {kind} mapping num_layers {str(layers)[:40]} is not in 0..{MAX_LAYERS}")


def _build(kind: str, kwargs: dict, state: dict[str, torch.Tensor], source: str, max_bytes: int) -> torch.nn.Module:
    """Our G or D with the given weights; shapes are checked on a weightless (meta) copy before allocating.

    max_bytes bounds the weights (the file size): together with the exact shape match, a configuration can
    never allocate more than the file can fill.
    """
    from synthhist.gan import Discriminator, Generator

    cls = Generator if kind != "D" else Discriminator
    _check_kwargs(kind, kwargs, source)
    if sum(t.numel() * t.element_size() for t in state.values()) > max_bytes + SLACK:
        raise UserError(f"{source}: the {kind} weights refer to more data than the file holds: refused")
    try:
        with torch.device("meta"):
            own = {k: tuple(v.shape) for k, v in cls(**kwargs).state_dict().items()}
    except Exception as e:  # TypeError / ValueError for unsupported options, anything else for absurd ones
        raise UserError(f"{source}: unsupported {kind} configuration ({str(e).splitlines()[0][:200]})") from None
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k] != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[:3]}")
        raise UserError(f"{source}: the {kind} weights do not match its configuration ({detail})")
    net = cls(**kwargs)
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


def _real(path: Path) -> Path:
    """The file a path names, symlinks followed: what is opened is what network_files reports."""
    return Path(os.path.realpath(path))


def _read_json(path: Path, what: str):
    """A small JSON file (size bounded, nesting errors caught) -> its value."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UserError(f"{what} {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a network config")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise UserError(f"{what} {path} is corrupt ({type(e).__name__}: {str(e)[:100]})") from None


def _number(value, kind: type, what: str, source: str, hi: float = MAX_VALUE, zero_ok: bool = False):
    """None, or value as a finite number in (0, hi] ([0, hi] with zero_ok): tile sizes, augment p."""
    if value is None or value == "":
        return None
    try:
        v = kind(value)
        ok = math.isfinite(v) and (0 <= v if zero_ok else 0 < v) and v <= hi and (kind is float or v == float(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or isinstance(value, bool):
        raise UserError(f"{source}: {what} {str(value)[:40]} is not a valid number")
    return v


# --------------------------------------------------------------------------------------- reference pickles

def _options_path(path: Path) -> Path:
    return path.parent / "training_options.json"  # slideflow writes it beside the pickles


def load_reference_pickle(path: Path, device: torch.device, training: bool) -> GanNetwork:
    """Load a StyleGAN2-ADA / StyleGAN3 / slideflow pickle (never executing it) plus training_options.json."""
    from synthhist.gan.pickle_io import PersistentRecord, read_network_pickle, record_state_dict
    from synthhist.gan.reference_config import discriminator_kwargs, generator_kwargs

    real = _real(path)
    data = read_network_pickle(real)
    size, src = real.stat().st_size, str(path)

    def build(key: str, kwargs_of) -> torch.nn.Module:
        try:
            kwargs, state = kwargs_of(data[key]), record_state_dict(data[key])
        except UserError as e:
            raise UserError(f"{src}: {e}") from None
        except (TypeError, ValueError, AttributeError, KeyError, ZeroDivisionError, OverflowError) as e:
            raise UserError(f"{src}: malformed network pickle ({key}: {type(e).__name__}: {str(e)[:150]})") from None
        return _build(key, kwargs, state, src, size)

    net = GanNetwork(G=_finish(build("G_ema", generator_kwargs), device, False), source=src)
    if training:
        if data.get("G") is not None:
            net.G_train = _finish(build("G", generator_kwargs), device, True)
        if data.get("D") is not None:
            net.D = _finish(build("D", discriminator_kwargs), device, True)
        pipe = data.get("augment_pipe")
        p = pipe.mapping("_buffers").get("p") if isinstance(pipe, PersistentRecord) else None
        net.augment_p = _number(float(p) if isinstance(p, torch.Tensor) and p.numel() == 1 else None, float,
                                "augment p", src, 1.0, zero_ok=True)
    opts = _options_path(path)
    if opts.is_file():
        sf = _read_json(_real(opts), "training options")
        sf = sf.get("slideflow_kwargs") if isinstance(sf, dict) else None
        sf = sf if isinstance(sf, dict) else {}
        net.tile_px = _number(sf.get("tile_px") or None, int, "tile_px", str(opts))
        net.tile_um = _number(sf.get("tile_um") or None, float, "tile_um", str(opts))
        net.class_names = _class_names(sf.get("outcome_labels"), net.c_dim)
    return net


# --------------------------------------------------------------------------------------- native format

def _native_config(path: Path) -> tuple[Path, Path, dict]:
    """(config json, weights safetensors, parsed config) for a native folder, .json or .safetensors path."""
    if path.is_dir():
        named = path / f"{DEFAULT_STEM}.json"
        configs = sorted(path.glob("*.json"))
        if named.is_file():
            config = named
        elif len(configs) == 1:
            config = configs[0]
        else:
            raise UserError(f"{path} holds no single native network config ({DEFAULT_STEM}.json)")
    else:
        config = path.with_suffix(".json")
    cfg = _read_json(_real(config), "network config")
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise UserError(f"{config} is not a synthhist network config")
    version = cfg.get("format_version", 0)
    if type(version) is not int:
        raise UserError(f"{config} has no valid format_version")
    if version > FORMAT_VERSION:
        raise UserError(f"{config} has format version {version}, newer than this code "
                        f"({FORMAT_VERSION}): update synthetic-histology")
    weights = cfg.get("weights") or config.with_suffix(".safetensors").name
    if not isinstance(weights, str) or Path(weights).name != weights or not weights.endswith(".safetensors"):
        raise UserError(f"{config}: weights must name a .safetensors file beside it, not {str(weights)[:80]!r}")
    if not isinstance(cfg.get("G_kwargs"), dict):
        raise UserError(f"{config} has no G_kwargs")
    networks = cfg.get("networks") or ["G_ema"]
    if not isinstance(networks, list) or not set(networks) <= {"G_ema", "G", "D"}:
        raise UserError(f"{config}: networks must be a list of G_ema, G, D")
    if "D" in networks and not isinstance(cfg.get("D_kwargs"), dict):
        raise UserError(f"{config} lists a D but has no D_kwargs")
    return config, config.with_name(weights), cfg


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise UserError(f"network weights not found: {weights}") from None
    except Exception as e:
        raise UserError(f"network weights {weights} are corrupt ({type(e).__name__}: {str(e)[:150]})") from None


def load_native(path: Path, device: torch.device, training: bool) -> GanNetwork:
    """Load our native format (folder, .json or .safetensors)."""
    config, weights, cfg = _native_config(path)
    src, real = str(config), _real(weights)
    tensors, size = _read_weights(real), real.stat().st_size

    def build(name: str, kwargs: dict) -> torch.nn.Module:
        prefix = name + "."
        return _build(name, kwargs, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, src,
                      size)

    G = build("G_ema", cfg["G_kwargs"])
    net = GanNetwork(G=_finish(G, device, False), class_names=_class_names(cfg.get("class_names"), int(G.c_dim)),
                     tile_px=_number(cfg.get("tile_px"), int, "tile_px", src),
                     tile_um=_number(cfg.get("tile_um"), float, "tile_um", src), source=src)
    if training:
        networks = cfg.get("networks") or []
        if "G" in networks:
            net.G_train = _finish(build("G", cfg["G_kwargs"]), device, True)
        if "D" in networks:
            net.D = _finish(build("D", cfg["D_kwargs"]), device, True)
        net.augment_p = _number(cfg.get("augment_p"), float, "augment_p", src, 1.0, zero_ok=True)
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

def _is_native(path: Path) -> bool:
    return not path.is_file() or path.suffix in (".json", ".safetensors")


def network_files(ref: str | Path) -> list[Path]:
    """Real paths (symlinks followed) of every file load_network(ref) opens, for callers that confine them."""
    from synthhist.refs import resolve

    path = resolve(ref, "network")
    if _is_native(path):
        config, weights, _ = _native_config(path)
        return [_real(config), _real(weights)]
    opts = _options_path(path)
    return [_real(path)] + ([_real(opts)] if opts.is_file() else [])


def load_network(ref: str | Path, device: torch.device | str | None = None, training: bool = False) -> GanNetwork:
    """Load a network from a reference pickle, a native folder/.json/.safetensors, `hf:owner/repo[/file][@rev]`
    or `demo`; files are opened at their real paths (see network_files)."""
    from synthhist.device import resolve_device
    from synthhist.refs import resolve

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    path = resolve(ref, "network")
    net = (load_native if _is_native(path) else load_reference_pickle)(path, device, training)
    if str(ref) == "demo" or str(ref).startswith("hf:"):
        net.source = str(ref)
    return net
