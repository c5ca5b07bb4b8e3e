"""Generator speed at 512 px (paper config): ours (fp32, bf16) vs a straightforward reference implementation.

Usage: python bench/generator.py [--device cpu|cuda] [--batches 1,8] [--repeats 3]
Prints img/s, speed-up over the reference algorithm measured in the same run, max |error| vs fp32 reference
math, the conv FLOP floor of the network and the machine's fp32 matmul rate.
"""

from __future__ import annotations

import math
import time

import click
import torch
import torch.nn.functional as F

from synthhist.gan import Generator

PAPER_G = dict(z_dim=512, c_dim=2, w_dim=512, img_resolution=512, img_channels=3,
               mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512)


# ---- Baseline: the reference algorithm as the spec writes it (fused grouped modconv, upfirdn2d FIR) ----

def ref_upfirdn2d(x, f, up=1, pad=(0, 0), gain=1.0):
    """Zero-insert x up, pad (before, after), depthwise 2-D conv with gain * F."""
    N, C, H, W = x.shape
    if up > 1:
        x = F.pad(x.reshape(N, C, H, 1, W, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(N, C, H * up, W * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, (f * gain).to(x.dtype).expand(C, 1, *f.shape), groups=C)


def ref_modulated_conv(x, weight, styles, demodulate, up, f):
    """Per-sample weights W*s (*d), one grouped conv; up=2: conv_transpose2d then FIR blur."""
    N, I, H, W = x.shape
    O, _, k, _ = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(N, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(N, -1, 1, 1, 1)
    x = x.reshape(1, -1, H, W)
    if up == 2:
        w = w.transpose(1, 2).reshape(N * I, O, k, k)
        x = F.conv_transpose2d(x, w, stride=2, groups=N)
        x = ref_upfirdn2d(x, f, pad=(1, 1), gain=4)
    else:
        x = F.conv2d(x, w.reshape(N * O, I, k, k), padding=k // 2, groups=N)
    return x.reshape(N, O, *x.shape[2:])


def ref_bias_act(x, b, act, gain, clamp):
    x = x + b.reshape(1, -1, 1, 1)
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    x = x * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


def ref_layer(layer, x, w):
    styles = layer.affine(w)
    x = ref_modulated_conv(x, layer.weight, styles, True, layer.up, layer.resample_filter)
    x = x + layer.noise_const * layer.noise_strength
    return ref_bias_act(x, layer.bias, "lrelu", math.sqrt(2), layer.conv_clamp)


def ref_torgb(layer, x, w):
    styles = layer.affine(w) * layer.weight_gain
    x = ref_modulated_conv(x, layer.weight, styles, False, 1, None)
    return ref_bias_act(x, layer.bias, "linear", 1.0, layer.conv_clamp)


def ref_synthesis(S, ws):
    """The reference synthesis network in fp32 (noise const) with the weights of our SynthesisNetwork S."""
    x = img = None
    i = 0
    for r in S.block_resolutions:
        b = getattr(S, f"b{r}")
        if b.in_channels == 0:
            x = ref_layer(b.conv1, b.const.unsqueeze(0).repeat(len(ws), 1, 1, 1), ws[:, i])
        else:
            x = ref_layer(b.conv1, ref_layer(b.conv0, x, ws[:, i]), ws[:, i + 1])
            img = ref_upfirdn2d(img, b.resample_filter, up=2, pad=(2, 1), gain=4)
        y = ref_torgb(b.torgb, x, ws[:, i + b.num_conv])
        img = y if img is None else img + y
        i += b.num_conv
    return img


# ---- Measurement helpers ----

def conv_flops(S) -> float:
    """Multiply-add FLOPs (x2) of the convolutions per image; the up-conv counted at its input resolution."""
    total = 0.0
    for r in S.block_resolutions:
        b = getattr(S, f"b{r}")
        for layer in [getattr(b, "conv0", None), b.conv1, b.torgb]:
            if layer is not None:
                O, I, k, _ = layer.weight.shape
                res = r // 2 if getattr(layer, "up", 1) == 2 else r
                total += 2 * O * I * k * k * res * res
    return total


def matmul_rate(device, n=2048, repeats=5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / timed(lambda: a @ b, device, repeats)


def timed(fn, device, repeats) -> float:
    """Best-of-repeats seconds of fn() after one warm-up call."""
    fn()
    best = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


@click.command()
@click.option("--device", default="cpu", help="cpu or cuda")
@click.option("--batches", default="1,8", help="comma-separated batch sizes")
@click.option("--repeats", default=3, type=int, help="timed repeats (best is kept)")
def main(device, batches, repeats):
    device = torch.device(device)
    torch.manual_seed(0)
    G = Generator(**PAPER_G).eval().requires_grad_(False).to(device)
    with torch.no_grad():  # make the noise and bias terms non-trivial
        for name, p in G.named_parameters():
            if name.endswith(("noise_strength", ".bias")) and "affine" not in name:
                p.normal_(0, 0.1)
    S = G.synthesis
    flops = conv_flops(S)
    rate = matmul_rate(device)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(f"conv FLOPs/image {flops / 1e9:.1f} G; fp32 matmul {rate / 1e9:.0f} GFLOP/s; "
          f"floor {rate / flops:.2f} img/s")
    print(f"{'batch':>5} {'path':<16} {'img/s':>7} {'speedup':>8} {'max|err|':>9}")
    for n in map(int, batches.split(",")):
        z = torch.randn(n, G.z_dim, device=device)
        c = F.one_hot(torch.arange(n, device=device) % G.c_dim, G.c_dim).float()
        with torch.inference_mode():
            ws = G.mapping(z, c)
            ref = ref_synthesis(S, ws)
            t_ref = timed(lambda: ref_synthesis(S, ws), device, repeats)
            print(f"{n:>5} {'reference fp32':<16} {n / t_ref:>7.2f} {1.0:>8.2f} {0.0:>9.1e}")
            for label, precision in (("ours fp32", "fp32"), ("ours bf16", "bf16")):
                img = S(ws, precision=precision)
                err = (img - ref).abs().max().item()
                t = timed(lambda: S(ws, precision=precision), device, repeats)
                print(f"{n:>5} {label:<16} {n / t:>7.2f} {t_ref / t:>8.2f} {err:>9.1e}")


if __name__ == "__main__":
    main()
