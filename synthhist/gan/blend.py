"""Class blending and layer blending of a class-conditional generator (docs/stylegan2.md §4.2, §4.3).

Class blending mixes the label embeddings before the mapping network:
    e(t) = (1-t)*embed(onehot(start)) + t*embed(onehot(end))
Because `embed` is affine and the weights sum to one this is G.mapping(z, soft_label(start, end, t)).

Layer blending mixes, for one z, the ws of class A and class B after the mapping network, on the
chosen ws indices L only:  w = w_A;  w[:, L] = f*w_B[:, L] + (1-f)*w_A[:, L].

ws index i feeds these synthesis layers (reference block layout, R = img_resolution):
    0 -> b4.conv1;  2k-5 -> b{2^k}.conv0 (+ b{2^(k-1)}.torgb);  2k-4 -> b{2^k}.conv1;  num_ws-1 -> bR.torgb.
"""

from __future__ import annotations

import re

import torch

from synthhist.errors import UserError
from synthhist.gan.latent import onehot, soft_label

# Style groups of the StyleGAN paper by synthesis resolution: coarse 4-8, middle 16-32, fine 64+.
PRESETS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def check_conditional(G, *classes: int) -> None:
    """Raise UserError unless G is class-conditional and every class index is in range."""
    if G.c_dim == 0:
        raise UserError("the network is unconditional (c_dim = 0): class blending needs a class-conditional network")
    for k in classes:
        if not 0 <= k < G.c_dim:
            raise UserError(f"class {k} is out of range: the network has {G.c_dim} classes (0 to {G.c_dim - 1})")


def blend_steps(steps: int) -> torch.Tensor:
    """Blend fractions t_i = i/(steps-1), i = 0..steps-1 (both ends included): [steps] float32."""
    if steps < 2:
        raise UserError(f"--steps must be at least 2 (got {steps})")
    return torch.arange(steps, dtype=torch.float64).div(steps - 1).float()


def class_blend_ws(G, z: torch.Tensor, start: int, end: int, t: float | torch.Tensor, psi: float = 1,
                   cutoff: int | None = None) -> torch.Tensor:
    """Class blending in label-embedding space: z [N, z_dim], t scalar or [N] -> ws [N, num_ws, w_dim]."""
    check_conditional(G, start, end)
    t = torch.as_tensor(t, dtype=torch.float32, device=z.device).reshape(-1)
    c = soft_label(start, end, t, G.c_dim, device=z.device).expand(z.shape[0], -1)  # [N, c_dim]
    return G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)


def layer_blend_ws(G, z: torch.Tensor, class_a: int, class_b: int, layers: list[int], f: float | torch.Tensor,
                   psi: float = 1, cutoff: int | None = None) -> torch.Tensor:
    """Layer blending: ws of class A with ws indices `layers` mixed toward class B by f (scalar or [N])."""
    check_conditional(G, class_a, class_b)
    check_layers(layers, G.num_ws)
    n = z.shape[0]
    w_a = G.mapping(z, onehot(class_a, G.c_dim, n, z.device), truncation_psi=psi, truncation_cutoff=cutoff)
    w_b = G.mapping(z, onehot(class_b, G.c_dim, n, z.device), truncation_psi=psi, truncation_cutoff=cutoff)
    f = torch.as_tensor(f, dtype=w_a.dtype, device=z.device).reshape(-1, 1, 1)  # [N or 1, 1, 1]
    w = w_a.clone()
    if layers:
        idx = torch.as_tensor(layers, device=z.device)
        w[:, idx] = f * w_b[:, idx] + (1 - f) * w_a[:, idx]
    return w


def check_layers(layers: list[int], num_ws: int) -> None:
    """Raise UserError if a ws index is outside 0..num_ws-1."""
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad:
        raise UserError(f"layer index {bad[0]} is out of range: the network has {num_ws} ws indices (0 to {num_ws - 1})")


def layer_resolution(idx: int, num_ws: int) -> int:
    """Resolution of the synthesis conv that reads ws index idx (the final toRGB for the last index)."""
    if idx == num_ws - 1:
        return 2 ** ((num_ws + 2) // 2)
    return 4 if idx == 0 else 2 ** ((idx + 1) // 2 + 2)


def layer_names(num_ws: int) -> list[str]:
    """Human-readable name of every ws index, e.g. 'w3: b16.conv0 + b8.torgb (16 px)'."""
    names = []
    for i in range(num_ws):
        r = layer_resolution(i, num_ws)
        if i == 0:
            layers = "b4.conv1"
        elif i == num_ws - 1:
            layers = f"b{r}.torgb"
        elif i % 2 == 1:
            layers = f"b{r}.conv0 + b{r // 2}.torgb"
        else:
            layers = f"b{r}.conv1"
        names.append(f"w{i}: {layers} ({r} px)")
    return names


def preset_layers(name: str, num_ws: int) -> list[int]:
    """ws indices of a style group: 'coarse' (4-8 px), 'middle' (16-32 px), 'fine' (64 px and up) or 'all'."""
    if name == "all":
        return list(range(num_ws))
    lo, hi = PRESETS[name]
    return [i for i in range(num_ws) if lo <= layer_resolution(i, num_ws) <= hi]


def parse_layers(spec: str, num_ws: int) -> list[int]:
    """Parse '0-3', '0,2,5', 'coarse', 'middle', 'fine', 'all' or combinations ('coarse,8') into sorted ws indices."""
    out: set[int] = set()
    for tok in str(spec).split(","):
        tok = tok.strip().lower()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", tok)
        if tok in PRESETS or tok == "all":
            sel = preset_layers(tok, num_ws)
            if not sel:
                raise UserError(f"layer group {tok!r} is empty for a network with {num_ws} ws indices")
            out.update(sel)
        elif m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise UserError(f"bad layer range {tok!r}: end is before start")
            out.update(range(a, b + 1))
        elif tok.isdigit():
            out.add(int(tok))
        else:
            raise UserError(f"malformed layer {tok!r} (expected e.g. 0-3, 0,2,5, coarse, middle, fine or all)")
    layers = sorted(out)
    check_layers(layers, num_ws)
    return layers


def blend_ws(G, z: torch.Tensor, start: int, end: int, t: float | torch.Tensor, layers: list[int] | None = None,
             psi: float = 1, cutoff: int | None = None) -> torch.Tensor:
    """ws at blend fraction t: class blending when layers is None, else layer blending of those ws indices (f = t)."""
    if layers is None:
        return class_blend_ws(G, z, start, end, t, psi, cutoff)
    return layer_blend_ws(G, z, start, end, layers, t, psi, cutoff)
