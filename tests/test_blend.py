"""Class blending and layer blending (synthhist.gan.blend)."""

import pytest
import torch
from explain_fakes import ToyGenerator

from synthhist.errors import UserError
from synthhist.gan.blend import (blend_steps, blend_ws, class_blend_ws, layer_blend_ws, layer_names, layer_resolution,
                                 parse_layers)
from synthhist.gan.latent import onehot, z_from_seeds


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return ToyGenerator(z_dim=8, c_dim=3, w_dim=8, img_resolution=32).eval()


def _ws(G, z, k, psi=1):
    return G.mapping(z, onehot(k, G.c_dim, len(z)), truncation_psi=psi)


@pytest.mark.parametrize("psi", [1, 0.7])
def test_class_blend_endpoints_are_the_class_images(G, psi):
    z = z_from_seeds([0, 1, 2], G.z_dim)
    for t, k in ((0.0, 0), (1.0, 2)):
        ws = class_blend_ws(G, z, 0, 2, t, psi)
        assert torch.equal(ws, _ws(G, z, k, psi))
        assert torch.equal(G.synthesis(ws), G.synthesis(_ws(G, z, k, psi)))


def test_class_blend_is_embedding_lerp(G):
    z = z_from_seeds([5], G.z_dim)
    t = 0.3
    e = (1 - t) * G.mapping.embed(onehot(0, 3)) + t * G.mapping.embed(onehot(1, 3))
    # the embedding of the soft label equals the blend of the class embeddings (embed is affine)
    soft = torch.tensor([[1 - t, t, 0.0]])
    assert torch.allclose(G.mapping.embed(soft), e, atol=1e-6)
    ws = class_blend_ws(G, z, 0, 1, t)
    assert torch.allclose(ws, G.mapping(z, soft), atol=1e-6)


def test_class_blend_per_sample_t(G):
    z = z_from_seeds([3], G.z_dim).expand(3, -1)
    ws = class_blend_ws(G, z, 0, 1, torch.tensor([0.0, 0.5, 1.0]))
    # same batch shape: bit-identical; across batch sizes only to float precision (BLAS blocking)
    assert torch.equal(ws[0], _ws(G, z, 0)[0]) and torch.equal(ws[2], _ws(G, z, 1)[2])
    assert torch.allclose(ws[0], _ws(G, z[:1], 0)[0], atol=1e-6)
    assert not torch.equal(ws[1], ws[0])


def test_layer_blend(G):
    z = z_from_seeds([0, 7], G.z_dim)
    wa, wb = _ws(G, z, 0), _ws(G, z, 1)
    assert torch.equal(layer_blend_ws(G, z, 0, 1, [], 0.8), wa)
    assert torch.equal(layer_blend_ws(G, z, 0, 1, list(range(G.num_ws)), 1.0), wb)
    w = layer_blend_ws(G, z, 0, 1, [1, 3], 0.25)
    keep = [i for i in range(G.num_ws) if i not in (1, 3)]
    assert torch.equal(w[:, keep], wa[:, keep])
    assert torch.allclose(w[:, [1, 3]], 0.25 * wb[:, [1, 3]] + 0.75 * wa[:, [1, 3]])
    # per-sample f, as in a blend sequence
    z2 = z[:1].expand(2, -1)
    w = layer_blend_ws(G, z2, 0, 1, [2], torch.tensor([0.0, 1.0]))
    assert torch.equal(w[0], _ws(G, z2, 0)[0]) and torch.equal(w[1, 2], _ws(G, z2, 1)[1, 2])
    assert torch.equal(blend_ws(G, z, 0, 1, 1.0, layers=[0, 1]), layer_blend_ws(G, z, 0, 1, [0, 1], 1.0))


def test_blend_steps():
    t = blend_steps(5)
    assert t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert blend_steps(100)[-1].item() == 1.0
    with pytest.raises(UserError, match="at least 2"):
        blend_steps(1)


def test_bad_classes(G):
    z = z_from_seeds([0], G.z_dim)
    with pytest.raises(UserError, match="class 3 is out of range"):
        class_blend_ws(G, z, 0, 3, 0.5)
    with pytest.raises(UserError, match="class -1 is out of range"):
        layer_blend_ws(G, z, -1, 1, [0], 0.5)
    U = ToyGenerator(c_dim=0)
    with pytest.raises(UserError, match="unconditional"):
        class_blend_ws(U, z, 0, 1, 0.5)


def test_layer_names_and_presets():
    # 512 px: 16 ws; index 0 = b4.conv1, 2k-5 = b{2^k}.conv0, 2k-4 = b{2^k}.conv1, last = b512.torgb
    names = layer_names(16)
    assert names[0].startswith("w0: b4.conv1") and names[15] == "w15: b512.torgb (512 px)"
    assert names[13] == "w13: b512.conv0 + b256.torgb (512 px)" and names[14] == "w14: b512.conv1 (512 px)"
    assert [layer_resolution(i, 16) for i in range(16)] == [4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256,
                                                            512, 512, 512]
    assert parse_layers("coarse", 16) == [0, 1, 2]
    assert parse_layers("middle", 16) == [3, 4, 5, 6]
    assert parse_layers("fine", 16) == list(range(7, 16))
    assert parse_layers("0-3", 16) == [0, 1, 2, 3]
    assert parse_layers("coarse, 9,5-6", 16) == [0, 1, 2, 5, 6, 9]
    assert parse_layers("all", 8) == list(range(8))
    for bad, msg in (("16", "out of range"), ("3-1", "end is before start"), ("x", "malformed"),
                     ("fine", "is empty")):
        with pytest.raises(UserError, match=msg):
            parse_layers(bad, 16 if bad != "fine" else 8)


@pytest.mark.parametrize("name", ["g32_cond2", "g64_cond3_map8"])
def test_class_blend_matches_reference_golden(name):
    """Reference: label embedding (1-t)*embed(onehot(0)) + t*embed(onehot(1)) replacing embed(c), psi 1."""
    from gan_fixtures import golden, golden_generator

    arrays, _ = golden(name)
    G = golden_generator(name)
    z = torch.from_numpy(arrays["in/z"])
    with torch.no_grad():
        for i, t in enumerate(arrays["in/blend_t"].tolist()):
            ws = class_blend_ws(G, z, 0, 1, t)
            assert torch.allclose(ws, torch.from_numpy(arrays["out/blend_ws"][i]), atol=1e-4)
            img = G.synthesis(ws, noise_mode="const")
            assert torch.allclose(img, torch.from_numpy(arrays["out/blend_img"][i]), atol=1e-4)


def test_golden_endpoints_and_layer_blend_exact():
    from gan_fixtures import golden_generator

    G = golden_generator("g64_cond3_map8")
    z = z_from_seeds([0, 1], G.z_dim)
    with torch.no_grad():
        for t, k in ((0.0, 0), (1.0, 2)):
            assert torch.equal(G.synthesis(class_blend_ws(G, z, 0, 2, t)), G(z, onehot(k, 3, 2)))
        assert torch.equal(G.synthesis(layer_blend_ws(G, z, 1, 2, [], 0.5)), G(z, onehot(1, 3, 2)))
        assert torch.equal(G.synthesis(layer_blend_ws(G, z, 1, 2, parse_layers("all", G.num_ws), 1.0)),
                           G(z, onehot(2, 3, 2)))
    assert len(layer_names(G.num_ws)) == G.num_ws == 10
