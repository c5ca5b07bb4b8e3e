"""The CUDA fp16 path (fp16 in the top blocks, as `precision='auto'` chooses on CUDA), emulated on CPU.

torch runs fp16 convolutions on CPU, so choosing fp16 for the `use_fp16` blocks here exercises the same code
as on a GPU: pre-normalisation of weights and styles, fp16 convs, clamps, fp32 ToRGB accumulation. The
outputs must match fp32 to fp16 rounding (docs/stylegan2.md §1.4).
"""

import pytest
import torch

import synthhist.gan.discriminator as discriminator
import synthhist.gan.synthesis as synthesis
from synthhist.gan.layers import Conv2dLayer
from gan_fixtures import golden, golden_discriminator, golden_generator

NAME = "g32_cond2"  # G: fp16 blocks at 16 and 32 px; D: fp16 blocks at 32, 16, 8 px; conv_clamp 256
FP16_TOL = 0.02  # images and logits are O(1..7); fp16 keeps 11 bits


def fp16_blocks(precision, use_fp16, device):
    """block_dtype as on CUDA with precision 'auto', whatever the device."""
    return torch.float16 if use_fp16 else torch.float32


@pytest.fixture
def nets():
    arrays, _ = golden(NAME)
    G, D = golden_generator(NAME), golden_discriminator(NAME)
    z, c = torch.from_numpy(arrays["in/z"]), torch.from_numpy(arrays["in/c"])
    with torch.no_grad():
        ws = G.mapping(z, c)
    return G, D, ws, c, torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"])


def synth(G, ws, monkeypatch, fp16: bool, fused: bool) -> torch.Tensor:
    with monkeypatch.context() as m, torch.no_grad():
        if fp16:
            m.setattr(synthesis, "block_dtype", fp16_blocks)
        return G.synthesis(ws, fused_modconv=fused)


def set_clamp(net, clamp: float) -> None:
    for m in net.modules():
        if getattr(m, "conv_clamp", None) is not None:
            m.conv_clamp = clamp


@pytest.mark.parametrize("fused", [True, False])
def test_generator_fp16_blocks_match_fp32(nets, monkeypatch, fused):
    G, _, ws, _, golden_img = nets
    img = synth(G, ws, monkeypatch, fp16=True, fused=fused)
    assert img.dtype == torch.float32 and img.is_contiguous()
    assert (img - golden_img).abs().max().item() < FP16_TOL


@pytest.mark.parametrize("fused", [True, False])
def test_generator_fp16_large_styles_are_prenormalised(nets, monkeypatch, fused):
    """Styles x1000 cancel under demodulation; in fp16, x * styles overflows unless pre-normalised."""
    G, _, ws, _, golden_img = nets
    with torch.no_grad():
        for block in G.synthesis.children():
            for layer in (getattr(block, "conv0", None), block.conv1):
                if layer is not None:
                    layer.affine.weight.mul_(1e3), layer.affine.bias.mul_(1e3)
    torch.testing.assert_close(synth(G, ws, monkeypatch, fp16=False, fused=fused), golden_img, atol=1e-4, rtol=0)
    img = synth(G, ws, monkeypatch, fp16=True, fused=fused)
    assert img.isfinite().all() and (img - golden_img).abs().max().item() < FP16_TOL


@pytest.mark.parametrize("fused", [True, False])
def test_generator_fp16_clamp(nets, monkeypatch, fused):
    """A clamp that bites (activations are O(1)) gives the same image in fp16 blocks as in fp32."""
    G, _, ws, _, golden_img = nets
    set_clamp(G, 1.0)
    img32 = synth(G, ws, monkeypatch, fp16=False, fused=fused)
    assert (img32 - golden_img).abs().max().item() > 1  # the clamp changes the image
    assert (synth(G, ws, monkeypatch, fp16=True, fused=fused) - img32).abs().max().item() < FP16_TOL


@pytest.mark.parametrize("clamp", [None, 1.0])
def test_discriminator_fp16_blocks_match_fp32(nets, monkeypatch, clamp):
    _, D, _, c, img = nets
    if clamp is not None:
        set_clamp(D, clamp)
    with torch.no_grad():
        logits32 = D(img, c)
        monkeypatch.setattr(discriminator, "block_dtype", fp16_blocks)
        logits16 = D(img, c)
    assert logits16.dtype == torch.float32
    assert (logits16 - logits32).abs().max().item() < FP16_TOL


def test_conv_weight_gradients_keep_fp16_headroom():
    """Conv2dLayer scales its weight in fp32 before the fp16 cast, so tiny fp16 weight gradients (upstream
    scale 1e-6, as early in fp16 training) are not multiplied by weight_gain in fp16 and flushed to zero."""
    torch.manual_seed(0)
    layer = Conv2dLayer(64, 64, 3, activation="lrelu", down=2, conv_clamp=256)  # a D conv1; weight_gain 1/24
    x = torch.randn(4, 64, 16, 16)
    upstream = torch.randn(4, 64, 8, 8) * 1e-6
    grads = {}
    for dtype in (torch.float32, torch.float16):
        layer.zero_grad()
        layer(x.to(dtype)).backward(upstream.to(dtype))
        grads[dtype] = layer.weight.grad
    g16, g32 = grads[torch.float16], grads[torch.float32]
    assert g16.dtype == torch.float32 and (g32 != 0).all()
    assert (g16 == 0).float().mean().item() < 0.02  # 12% when cast before the multiply
    assert ((g16 - g32).norm() / g32.norm()).item() < 0.05


@pytest.mark.parametrize("fused", [True, False])
def test_synthesis_output_is_contiguous(nets, fused):
    """The blocks run channels_last; the image a caller gets is plain NCHW, so .view() works."""
    G, _, ws, _, _ = nets
    with torch.no_grad():
        img = G.synthesis(ws, fused_modconv=fused)
    assert img.is_contiguous()
    assert img.view(len(img), -1).shape == (len(img), 3 * 32 * 32)
