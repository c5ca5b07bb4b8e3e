"""Test helpers: golden networks as our modules, in the native format, and as reference-format pickles.

`write_reference_pickle` writes the byte structure NVIDIA's `torch_utils.persistence` produces (docs/stylegan2.md §3.2):
every module is a `<prefix>torch_utils.persistence._reconstruct_persistent_obj(meta)` call whose meta holds
`module_src`, `class_name` and the module's `__dict__`. Globals are written by name, never imported, so the
pickle can name modules that do not exist here; its module_src fails loudly if anyone executes it.
"""

from __future__ import annotations

import collections
import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
NAMES = ("g16_uncond", "g32_cond2", "g64_cond3_map8")
EXPLODING_SRC = "raise SystemExit('embedded module_src was executed!')\n"


def golden(name: str) -> tuple[dict, dict]:
    """(arrays of <name>.npz, kwargs json) of a golden network."""
    return dict(np.load(GOLDEN / f"{name}.npz")), json.loads((GOLDEN / f"{name}.json").read_text())


def golden_state(name: str, net: str = "G") -> dict[str, torch.Tensor]:
    """Reference state dict of the golden G or D."""
    arrays, _ = golden(name)
    return {k[len(net) + 1:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(net + "/")}


def golden_generator(name: str):
    """Our Generator with the golden weights (eval mode)."""
    from synthhist.gan import Generator

    G = Generator(**golden(name)[1]["G_kwargs"])
    G.load_state_dict(golden_state(name, "G"))
    return G.eval().requires_grad_(False)


def golden_discriminator(name: str):
    """Our Discriminator with the golden weights (eval mode)."""
    from synthhist.gan import Discriminator

    D = Discriminator(**golden(name)[1]["D_kwargs"])
    D.load_state_dict(golden_state(name, "D"))
    return D.eval().requires_grad_(False)


def expected_uint8(name: str, psi: float = 1.0, noise: str = "const") -> np.ndarray:
    """Golden images for (psi, cutoff None, noise) as NHWC uint8 via the project's one conversion."""
    from synthhist.images import to_uint8

    arrays, _ = golden(name)
    return to_uint8(torch.from_numpy(arrays[f"out/img_psi{psi}_cutNone_noise{noise}"])).numpy()


def class_names_of(name: str) -> list[str] | None:
    """Made-up class names for a golden network (None when unconditional)."""
    c_dim = golden(name)[1]["G_kwargs"]["c_dim"]
    return [f"class{chr(65 + i)}" for i in range(c_dim)] or None


def write_native(name: str, dest: Path, training: bool = False, tile_px: int | None = None,
                 tile_um: float | None = None) -> Path:
    """Write golden network `name` in the native format to folder dest; returns the config path."""
    from synthhist.gan import save_network

    G = golden_generator(name)
    extra = dict(D=golden_discriminator(name), G_train=golden_generator(name), augment_p=0.25) if training else {}
    return save_network(dest, G, class_names=class_names_of(name), tile_px=tile_px or G.img_resolution,
                        tile_um=tile_um or 2.0 * G.img_resolution, **extra)


# ------------------------------------------------------------------------------ reference pickle writer

class Global:
    """A global written by module/name (STACK_GLOBAL or GLOBAL) without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise RuntimeError("a stand-in global is never called")


class EasyDict(dict):
    """Pickles as `<prefix>dnnlib.util.EasyDict` (NEWOBJ + SETITEMS), like the reference's EasyDict."""

    module = "dnnlib.util"


class NumpyScalar:
    """A float64 numpy scalar pickled with the numpy 1.x (`numpy.core`) or 2.x (`numpy._core`) spelling."""

    def __init__(self, value: float, spelling: str):
        self.value, self.spelling = value, spelling

    def __reduce__(self):
        return Global(f"{self.spelling}.multiarray", "scalar"), (np.dtype("float64"), np.float64(self.value).tobytes())


class Persistent:
    """A module as torch_utils.persistence pickles it: reconstruct(meta) with the source and __dict__."""

    def __init__(self, module_prefix: str, class_name: str, state: dict, module_src: str, version: int = 6):
        self.fn = Global(module_prefix + "torch_utils.persistence", "_reconstruct_persistent_obj")
        self.meta = dict(type="class", version=version, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return self.fn, (self.meta,)


class RefPickler(pickle._Pickler):
    """Pure-Python pickler that writes Global / EasyDict stand-ins under their reference names."""

    dispatch = pickle._Pickler.dispatch.copy()
    easydict_prefix = ""

    def save_global_standin(self, obj):
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def save_easydict(self, obj):
        self.save(Global(self.easydict_prefix + obj.module, "EasyDict"))
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    dispatch[Global] = save_global_standin
    dispatch[EasyDict] = save_easydict


def _tree(state: dict[str, torch.Tensor]) -> dict:
    """Nest a flat state dict: {'a.b.w': t} -> {'a': {'b': {'w': t}}}."""
    root: dict = {}
    for key, t in state.items():
        *path, leaf = key.split(".")
        node = root
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = t
    return root


class _Builder:
    """Turns a golden state dict + reference kwargs into nested Persistent objects (NV3 or ADA flavour)."""

    def __init__(self, variant: str, prefix: str, numpy_spelling: str, module_src: str, version: int):
        self.variant, self.prefix, self.np, self.src, self.version = variant, prefix, numpy_spelling, module_src, version

    def f64(self, v: float):
        return NumpyScalar(v, self.np)

    def module(self, class_name: str, node: dict, attrs: dict, children: dict | None = None,
               buffers: tuple[str, ...] = ("resample_filter", "noise_const", "w_avg", "p")) -> Persistent:
        params = {k: torch.nn.Parameter(v.clone(), requires_grad=False) for k, v in node.items()
                  if isinstance(v, torch.Tensor) and k not in buffers}
        bufs = {k: v.clone() for k, v in node.items() if isinstance(v, torch.Tensor) and k in buffers}
        hooks = ("_backward_pre_hooks _backward_hooks _forward_hooks _forward_hooks_with_kwargs "
                 "_forward_hooks_always_called _forward_pre_hooks _forward_pre_hooks_with_kwargs _state_dict_hooks "
                 "_state_dict_pre_hooks _load_state_dict_pre_hooks _load_state_dict_post_hooks").split()
        state = {"training": False, "_parameters": params, "_buffers": bufs, "_non_persistent_buffers_set": set(),
                 **{h: collections.OrderedDict() for h in hooks}, "_is_full_backward_hook": None,
                 "_modules": children or {}, **attrs, "_init_args": ()}
        state["_init_kwargs"] = EasyDict(attrs.get("_init_kwargs", {}))
        return Persistent(self.prefix, class_name, state, self.src, self.version)

    def fc(self, node: dict, lr: float, activation: str) -> Persistent:
        out_f, in_f = node["weight"].shape
        attrs = dict(activation=activation, weight_gain=self.f64(lr / math.sqrt(in_f)), bias_gain=lr)
        if self.variant == "nv3":
            attrs.update(in_features=in_f, out_features=out_f)
        return self.module("FullyConnectedLayer", node, attrs)

    def mapping(self, node: dict, kw: dict, lr: float = 0.01, w_avg_beta=None) -> Persistent:
        children = {}
        if "embed" in node:
            children["embed"] = self.fc(node["embed"], 1.0, "linear")
        fcs = sorted((k for k in node if re.fullmatch(r"fc\d+", k)), key=lambda k: int(k[2:]))
        for k in fcs:
            children[k] = self.fc(node[k], lr, "lrelu")
        attrs = dict(kw, num_layers=len(fcs), w_avg_beta=w_avg_beta)
        return self.module("MappingNetwork", node, attrs, children)

    def generator(self, state: dict, kw: dict) -> Persistent:
        t = _tree(state)
        R, n16, clamp = kw["img_resolution"], kw["num_fp16_res"], kw["conv_clamp"]
        log2 = int(math.log2(R))
        fp16_res = max(2 ** (log2 + 1 - n16), 8)
        res = [2 ** i for i in range(2, log2 + 1)]
        num_ws = 2 * log2 - 2
        blocks = {}
        for r in res:
            node = t["synthesis"][f"b{r}"]
            children = {}
            for name in ("conv0", "conv1"):
                if name in node:
                    c = node[name]
                    attrs = dict(w_dim=kw["w_dim"], resolution=r, up=2 if name == "conv0" else 1, use_noise=True,
                                 activation="lrelu", conv_clamp=clamp, padding=1, act_gain=self.f64(math.sqrt(2)))
                    if self.variant == "nv3":
                        attrs.update(in_channels=c["weight"].shape[1], out_channels=c["weight"].shape[0])
                    children[name] = self.module("SynthesisLayer", c, attrs,
                                                 {"affine": self.fc(c["affine"], 1.0, "linear")})
            trgb = node["torgb"]
            children["torgb"] = self.module("ToRGBLayer", trgb, dict(conv_clamp=clamp, weight_gain=self.f64(
                1 / math.sqrt(trgb["weight"].shape[1]))), {"affine": self.fc(trgb["affine"], 1.0, "linear")})
            attrs = dict(in_channels=0 if r == 4 else node["conv0"]["weight"].shape[1], w_dim=kw["w_dim"],
                         resolution=r, img_channels=3, is_last=r == R, architecture="skip",
                         use_fp16=n16 > 0 and r >= fp16_res, channels_last=False,
                         num_conv=len([c for c in ("conv0", "conv1") if c in node]), num_torgb=1)
            if self.variant == "nv3":
                attrs["fused_modconv_default"] = "inference_only"
            blocks[f"b{r}"] = self.module("SynthesisBlock", node, attrs, children)
        syn_attrs = dict(w_dim=kw["w_dim"], img_resolution=R, img_resolution_log2=log2, img_channels=3,
                         block_resolutions=res, num_ws=num_ws)
        if self.variant == "nv3":
            syn_attrs["num_fp16_res"] = n16
        synthesis = self.module("SynthesisNetwork", {}, syn_attrs, blocks)
        mapping = self.mapping(t["mapping"], dict(z_dim=kw["z_dim"], c_dim=kw["c_dim"], w_dim=kw["w_dim"], num_ws=num_ws),
                               w_avg_beta=0.998 if self.variant == "nv3" else 0.995)
        common = {k: kw[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
        if self.variant == "nv3":  # observed NV3 init_kwargs: no num_fp16_res / conv_clamp (docs/stylegan2.md §3.2)
            init = dict(common, mapping_kwargs=EasyDict(kw["mapping_kwargs"]), channel_base=kw["channel_base"],
                        channel_max=kw["channel_max"], fused_modconv_default="inference_only")
        else:  # ADA nests them under synthesis_kwargs
            init = dict(common, mapping_kwargs=EasyDict(kw["mapping_kwargs"]), synthesis_kwargs=EasyDict(
                channel_base=kw["channel_base"], channel_max=kw["channel_max"], num_fp16_res=n16, conv_clamp=clamp))
        attrs = dict(common, num_ws=num_ws, _init_kwargs=init)
        return self.module("Generator", {}, attrs, {"synthesis": synthesis, "mapping": mapping})

    def conv(self, node: dict, clamp, down: int = 1, activation: str = "lrelu") -> Persistent:
        out_c, in_c, k, _ = node["weight"].shape
        attrs = dict(in_channels=in_c, out_channels=out_c, activation=activation, up=1, down=down,
                     conv_clamp=clamp, pad0=k // 2, act_gain=self.f64(math.sqrt(2) if activation == "lrelu" else 1.0),
                     weight_gain=self.f64(1 / math.sqrt(in_c * k * k)))
        return self.module("Conv2dLayer", node, attrs)

    def discriminator(self, state: dict, kw: dict) -> Persistent:
        t = _tree(state)
        R, clamp, n16 = kw["img_resolution"], kw["conv_clamp"], kw["num_fp16_res"]
        log2 = int(math.log2(R))
        fp16_res = max(2 ** (log2 + 1 - n16), 8)
        res = [2 ** i for i in range(log2, 2, -1)]
        children = {}
        for r in res:
            node = t[f"b{r}"]
            ch = {}
            if "fromrgb" in node:
                ch["fromrgb"] = self.conv(node["fromrgb"], clamp)
            ch["conv0"] = self.conv(node["conv0"], clamp)
            ch["conv1"] = self.conv(node["conv1"], clamp, down=2)
            ch["skip"] = self.conv(node["skip"], None, down=2, activation="linear")
            attrs = dict(in_channels=0 if r == R else node["conv0"]["weight"].shape[1], resolution=r, img_channels=3,
                         first_layer_idx=0, architecture="resnet", use_fp16=r >= fp16_res, channels_last=False)
            children[f"b{r}"] = self.module("DiscriminatorBlock", node, attrs, ch)
        if "mapping" in t:
            children["mapping"] = self.mapping(t["mapping"], dict(z_dim=0, c_dim=kw["c_dim"], w_dim=t["mapping"][
                "fc0"]["weight"].shape[0], num_ws=None))
        e = t["b4"]
        mbstd = self.module("MinibatchStdLayer", {}, dict(group_size=kw["epilogue_kwargs"]["mbstd_group_size"],
                                                          num_channels=1))
        cmap_dim = e["out"]["weight"].shape[0] if kw["c_dim"] else 0
        children["b4"] = self.module("DiscriminatorEpilogue", {}, dict(
            in_channels=e["conv"]["weight"].shape[0], cmap_dim=cmap_dim, resolution=4, img_channels=3,
            architecture="resnet"), {"mbstd": mbstd, "conv": self.conv(e["conv"], clamp),
                                     "fc": self.fc(e["fc"], 1.0, "lrelu"), "out": self.fc(e["out"], 1.0, "linear")})
        init = {k: kw[k] for k in ("c_dim", "img_resolution", "img_channels", "channel_base", "channel_max")}
        attrs = dict(c_dim=kw["c_dim"], img_resolution=R, img_resolution_log2=log2, img_channels=3,
                     block_resolutions=res, _init_kwargs=init)
        return self.module("Discriminator", {}, attrs, children)


def reference_snapshot(name: str, variant: str = "nv3", module_prefix: str = "", numpy_spelling: str = "numpy._core",
                       module_src: str = EXPLODING_SRC, version: int = 6, augment_p: float | None = 0.25) -> dict:
    """The dict a reference training loop pickles (G, D, G_ema, augment_pipe, training_set_kwargs), as stand-ins."""
    b = _Builder(variant, module_prefix, numpy_spelling, module_src, version)
    _, kw = golden(name)
    src = {"nv3": "update_emas\n", "ada": "skip_w_avg_update\n"}[variant] + module_src
    b.src = src
    G = b.generator(golden_state(name, "G"), kw["G_kwargs"])
    pipe = (b.module("AugmentPipe", {"p": torch.tensor(augment_p)}, dict(xflip=1.0, rotate90=1.0))
            if augment_p is not None else None)
    return {"G": G, "D": b.discriminator(golden_state(name, "D"), kw["D_kwargs"]),
            "G_ema": b.generator(golden_state(name, "G"), kw["G_kwargs"]), "augment_pipe": pipe,
            "training_set_kwargs": {"class_name": "slideflow.io.torch.StyleGAN2Interleaver", "resolution": kw[
                "G_kwargs"]["img_resolution"], "xflip": True, "max_size": None}}


def write_reference_pickle(name: str, path: Path, protocol: int = 4, training_options: dict | None = None,
                           obj=None, **kwargs) -> Path:
    """Write a golden network as a reference-format snapshot pickle (+ training_options.json when given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = reference_snapshot(name, **kwargs) if obj is None else obj
    with open(path, "wb") as f:
        p = RefPickler(f, protocol=protocol)
        p.easydict_prefix = kwargs.get("module_prefix", "")
        p.dump(obj)
    if training_options is not None:
        (path.parent / "training_options.json").write_text(json.dumps(training_options))
    return path


def slideflow_options(name: str, tile_um: float = 400.0) -> dict:
    """A training_options.json as the slideflow fork writes it (only the parts readers use)."""
    _, kw = golden(name)
    names = class_names_of(name) or []
    return {"slideflow_kwargs": {"tile_px": kw["G_kwargs"]["img_resolution"], "tile_um": tile_um,
                                 "model_type": "categorical", "outcome_labels": {str(i): n for i, n in enumerate(names)}}}
