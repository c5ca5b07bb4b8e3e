"""Generator/Discriminator against the reference golden vectors (tests/data/golden), plus gradient smoke tests."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthhist.gan import Discriminator, Generator
from synthhist.gan.latent import soft_label
from synthhist.gan.ops import conv2d_down2, conv2d_up2, downsample2d, setup_filter, upsample2d
from testkit import GOLDEN

NAMES = sorted(p.stem for p in GOLDEN.glob("*.npz"))
TOL = 1e-4


def load(name):
    """(G, D, arrays) of one golden file, weights loaded, eval mode."""
    arrays = dict(np.load(GOLDEN / f"{name}.npz"))
    cfg = json.loads((GOLDEN / f"{name}.json").read_text())
    G, D = Generator(**cfg["G_kwargs"]).eval(), Discriminator(**cfg["D_kwargs"]).eval()
    for prefix, net in (("G/", G), ("D/", D)):
        net.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(prefix)})
    return G, D, arrays


def cases(arrays):
    """(suffix, psi, cutoff) of every out/ws_* entry."""
    for key in arrays:
        if key.startswith("out/ws_"):
            suffix = key[len("out/ws_"):]
            psi, cut = suffix.split("_")
            yield suffix, float(psi[3:]), None if cut == "cutNone" else int(cut[3:])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_matches_reference(name):
    G, D, arrays = load(name)
    for prefix, net in (("G/", G), ("D/", D)):
        ref = [(k[2:], arrays[k].shape) for k in arrays if k.startswith(prefix)]
        assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == ref


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fused", [True, False])
def test_generator_matches_reference(name, fused):
    G, _, arrays = load(name)
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    with torch.no_grad():
        for suffix, psi, cutoff in cases(arrays):
            ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
            np.testing.assert_allclose(ws.numpy(), arrays[f"out/ws_{suffix}"], atol=TOL, rtol=0)
            for noise_mode in ("const", "none"):
                img = G.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused)
                np.testing.assert_allclose(img.numpy(), arrays[f"out/img_{suffix}_noise{noise_mode}"], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", [n for n in NAMES if "uncond" not in n])
def test_class_blending_matches_reference(name):
    G, _, arrays = load(name)
    z = torch.from_numpy(arrays["in/z"])
    with torch.no_grad():
        for i, t in enumerate(arrays["in/blend_t"]):
            c = soft_label(0, 1, float(t), G.c_dim).expand(len(z), -1)
            ws = G.mapping(z, c)
            np.testing.assert_allclose(ws.numpy(), arrays["out/blend_ws"][i], atol=TOL, rtol=0)
            np.testing.assert_allclose(G.synthesis(ws).numpy(), arrays["out/blend_img"][i], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_matches_reference(name):
    _, D, arrays = load(name)
    with torch.no_grad():
        logits = D(torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"]), torch.from_numpy(arrays["in/c"]))
    np.testing.assert_allclose(logits.numpy(), arrays["out/D_logits"], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_generator_call_and_init_kwargs(name):
    G, D, arrays = load(name)
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.6)
        assert torch.equal(img, G.synthesis(G.mapping(z, c, truncation_psi=0.6)))
    assert G.num_ws == arrays["out/ws_psi1.0_cutNone"].shape[1] and G.c_dim == c.shape[1]
    G2, D2 = Generator(**G.init_kwargs), Discriminator(**D.init_kwargs)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    assert json.loads(json.dumps(G.init_kwargs)) == G.init_kwargs


def test_bf16_close_to_fp32():
    G, _, arrays = load("g32_cond2")
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    with torch.no_grad():
        for fused in (True, False):
            img = G(z, c, precision="bf16", fused_modconv=fused)
            assert img.dtype == torch.float32
            err = (img - torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"])).abs().max().item()
            assert err < 0.2, err


def naive_upfirdn(x, f, up, pad0, pad1, gain):
    """The reference definition: zero-insert, pad, 2-D depthwise conv with gain^2 * F."""
    N, C, H, W = x.shape
    if up == 2:
        x = torch.stack([x, torch.zeros_like(x)], dim=-1).reshape(N, C, H, 2 * W)
        x = torch.stack([x, torch.zeros_like(x)], dim=-2).reshape(N, C, 2 * H, 2 * W)
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    return F.conv2d(x, (f * gain**2).expand(C, 1, 4, 4), groups=C)


def test_fir_ops_match_definition():
    torch.manual_seed(0)
    f = setup_filter()
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    f64 = f.double()
    torch.testing.assert_close(upsample2d(x, f64), naive_upfirdn(x, f64, 2, 2, 1, 2))
    torch.testing.assert_close(downsample2d(x, f64), naive_upfirdn(x, f64, 1, 1, 1, 1)[:, :, ::2, ::2])
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    up = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
    torch.testing.assert_close(conv2d_up2(x, w, f64), naive_upfirdn(up, f64, 1, 1, 1, 2))
    torch.testing.assert_close(conv2d_down2(x, w, f64), F.conv2d(naive_upfirdn(x, f64, 1, 2, 2, 1), w, stride=2))


def test_gradients_flow_for_training():
    """Gmain, path-length (grad of images w.r.t. ws, double backward) and R1 (double backward through D)."""
    G, D, arrays = load("g32_cond2")
    G.train(), D.train()
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    ws = G.mapping(z, c, update_emas=True)
    img = G.synthesis(ws, noise_mode="random")
    F.softplus(-D(img, c)).mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in G.parameters())
    assert G.synthesis.b32.conv1.noise_strength.grad is not None
    G.zero_grad()
    ws = G.mapping(z, c)
    img = G.synthesis(ws, noise_mode="random")
    (pl_grads,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    pl_grads.square().sum(2).mean(1).sqrt().mean().backward()
    assert G.synthesis.b8.conv0.weight.grad.abs().sum() > 0
    real = torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"]).requires_grad_(True)
    (r1_grads,) = torch.autograd.grad(D(real, c).sum(), real, create_graph=True)
    r1_grads.square().sum([1, 2, 3]).mean().backward()
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad)
