"""Constructor kwargs of our Generator/Discriminator from captured reference network records.

The runtime configuration is read from each submodule's own attributes and tensor shapes (docs/stylegan2.md §3.2, §7):
`_init_kwargs` lacks num_fp16_res/conv_clamp in NV3 pickles (their defaults live in the embedded source),
ADA nests them under `synthesis_kwargs`, and w_avg_beta differs between code bases.
"""

from __future__ import annotations

import re

from synthhist.errors import UserError
from synthhist.gan.pickle_io import PersistentRecord

KNOWN_CLASSES = {
    "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer", "ToRGBLayer",
    "FullyConnectedLayer", "Conv2dLayer", "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue",
    "MinibatchStdLayer", "AugmentPipe",
}


def check_classes(rec: PersistentRecord, path: str) -> None:
    """Raise UserError if the record tree holds a class we cannot rebuild."""
    if rec.class_name == "InterpolatedMappingNetwork":
        raise UserError(f"{path} is a slideflow 'interp_embed' (linear label) network: not supported")
    if rec.class_name not in KNOWN_CLASSES:
        raise UserError(f"unknown network class {rec.class_name!r} at {path}: only StyleGAN2 "
                        "(ADA / StyleGAN3 --cfg=stylegan2 / slideflow) networks are supported")
    for name, child in rec.mapping("_modules").items():
        if isinstance(child, PersistentRecord):
            check_classes(child, f"{path}.{name}")


def _blocks(rec: PersistentRecord, what: str) -> dict[int, PersistentRecord]:
    blocks = {int(m.group(1)): c for n, c in rec.mapping("_modules").items()
              if (m := re.fullmatch(r"b(\d+)", n)) and c is not None}
    if not blocks:
        raise UserError(f"the {what} has no b4..bR blocks: not a StyleGAN2 network (StyleGAN3 'alias-free' "
                        "networks are not supported)")
    return blocks


def _shape(rec: PersistentRecord, name: str) -> tuple[int, ...]:
    t = rec.mapping("_parameters").get(name)
    if t is None:
        raise UserError(f"malformed network pickle: {rec.class_name} has no {name}")
    return tuple(t.shape)


def _channel_layout(channels: dict[int, int], hints: list[dict]) -> tuple[int, int]:
    """(channel_base, channel_max) giving ch(r) = min(base // r, max) for the observed channels."""
    def fits(base, cmax):
        return all(min(base // r, cmax) == c for r, c in channels.items())

    for h in hints:
        base, cmax = h.get("channel_base", 32768), h.get("channel_max", 512)
        if fits(base, cmax):
            return int(base), int(cmax)
    cmax = max(channels.values())
    unsat = [r for r, c in channels.items() if c < cmax]
    base = channels[max(unsat)] * max(unsat) if unsat else cmax * max(channels)
    if not fits(base, cmax):
        raise UserError(f"cannot infer channel_base/channel_max from the block widths {channels}")
    return base, cmax


def _mapping_kwargs(mapping: PersistentRecord, c_dim: int, with_w_avg: bool) -> dict:
    fcs = sorted((n for n in mapping.mapping("_modules") if re.fullmatch(r"fc\d+", n)),
                 key=lambda n: int(n[2:]))
    if not fcs:
        raise UserError("malformed network pickle: the mapping network has no layers")
    fc0 = mapping.child("fc0")
    kw = {"num_layers": len(fcs), "lr_multiplier": float(fc0.attr("bias_gain", 0.01)),
          "activation": fc0.attr("activation", "lrelu")}
    if len(fcs) > 1:
        kw["layer_features"] = _shape(fc0, "weight")[0]
    if c_dim > 0 and mapping.child("embed") is not None:
        kw["embed_features"] = _shape(mapping.child("embed"), "weight")[0]
    if with_w_avg and mapping.attr("w_avg_beta") is not None:
        kw["w_avg_beta"] = float(mapping.attr("w_avg_beta"))
    return kw


def _init_kwargs(rec: PersistentRecord | None) -> dict:
    kw = rec.state.get("_init_kwargs") if rec is not None else None
    return dict(kw) if isinstance(kw, dict) else {}


def generator_kwargs(G: PersistentRecord) -> dict:
    """Reference Generator constructor kwargs that rebuild this G exactly."""
    check_classes(G, "G")
    if G.class_name != "Generator":
        raise UserError(f"expected a Generator, found {G.class_name}")
    mapping, synthesis = G.child("mapping"), G.child("synthesis")
    if mapping is None or synthesis is None:
        raise UserError("malformed network pickle: the Generator lacks mapping or synthesis")
    blocks = _blocks(synthesis, "generator")
    c_dim = int(G.attr("c_dim"))
    layers = [c for b in blocks.values() for n, c in b.mapping("_modules").items()
              if n in ("conv0", "conv1", "torgb") and c is not None]
    clamps = {layer.attr("conv_clamp") for layer in layers}
    if len(clamps) != 1:
        raise UserError(f"the generator mixes conv_clamp values {sorted(map(str, clamps))}: not supported")
    num_fp16 = synthesis.attr("num_fp16_res")
    if num_fp16 is None:
        num_fp16 = sum(bool(b.attr("use_fp16")) for b in blocks.values())
    init = _init_kwargs(G)
    hints = [init, init.get("synthesis_kwargs") or {}, _init_kwargs(synthesis)]
    channels = {r: _shape(b.child("conv1"), "weight")[0] for r, b in blocks.items()}
    channel_base, channel_max = _channel_layout(channels, [h for h in hints if "channel_base" in h])
    return {
        "z_dim": int(G.attr("z_dim")), "c_dim": c_dim, "w_dim": int(G.attr("w_dim")),
        "img_resolution": int(G.attr("img_resolution")), "img_channels": int(G.attr("img_channels")),
        "mapping_kwargs": _mapping_kwargs(mapping, c_dim, with_w_avg=True),
        "channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": int(num_fp16),
        "conv_clamp": clamps.pop(), "architecture": blocks[max(blocks)].attr("architecture", "skip"),
    }


def discriminator_kwargs(D: PersistentRecord) -> dict:
    """Reference Discriminator constructor kwargs that rebuild this D exactly."""
    check_classes(D, "D")
    if D.class_name != "Discriminator":
        raise UserError(f"expected a Discriminator, found {D.class_name}")
    blocks = _blocks(D, "discriminator")
    epilogue = blocks.pop(4)
    c_dim = int(D.attr("c_dim"))
    res = max(blocks)
    channels = {r: _shape(b.child("conv0"), "weight")[0] for r, b in blocks.items()}
    channels[4] = _shape(epilogue.child("conv"), "weight")[0]
    init = _init_kwargs(D)
    channel_base, channel_max = _channel_layout(channels, [init] if "channel_base" in init else [])
    mbstd = epilogue.child("mbstd")
    epilogue_kwargs = ({"mbstd_group_size": mbstd.attr("group_size"), "mbstd_num_channels": int(mbstd.attr("num_channels"))}
                       if mbstd is not None else {"mbstd_num_channels": 0})
    kw = {
        "c_dim": c_dim, "img_resolution": int(D.attr("img_resolution")), "img_channels": int(D.attr("img_channels")),
        "architecture": blocks[res].attr("architecture", "resnet"),
        "channel_base": channel_base, "channel_max": channel_max,
        "num_fp16_res": sum(bool(b.attr("use_fp16")) for b in blocks.values()),
        "conv_clamp": blocks[res].child("conv0").attr("conv_clamp"),
        "mapping_kwargs": _mapping_kwargs(D.child("mapping"), c_dim, with_w_avg=False) if c_dim > 0 else {},
        "epilogue_kwargs": epilogue_kwargs,
    }
    cmap_dim = epilogue.attr("cmap_dim")
    if c_dim > 0 and cmap_dim not in (None, channels[4]):
        kw["cmap_dim"] = int(cmap_dim)
    return kw
