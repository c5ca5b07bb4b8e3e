"""Generator speed at 512 px (paper config): ours vs the reference algorithm, each in its own process.

Usage: python bench/generator.py [--device cpu|cuda] [--batches 1,8] [--rounds 3] [--configs ...]

Configurations (each timed in a fresh worker process, the configurations interleaved round after round; the
median of the rounds is reported):
  reference       the reference algorithm in fp32 as NVIDIA's code runs it (fused per-sample-weight grouped
                  convs, upfirdn2d as zero-insert + pad + 2-D FIR conv), glibc's default allocator: the baseline;
  reference+heap  the same with our allocator setting (keep_freed_memory), to separate the algorithm from it;
  fp32            ours in fp32, as our scripts run it (synthhist.cli.run calls keep_freed_memory);
  auto            ours, precision auto (fp16 in the top blocks on CUDA; = fp32 on CPU);
  bf16            ours in bf16 (default only where the CPU has native bf16, or on CUDA).
Prints img/s and process CPU s/img (less sensitive to a shared machine's load), each with its speed-up over
the reference (same run), max |error| against the reference's image, the conv
FLOP floor of the network, the machine's fp32 matmul rate and the load average before and after.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthhist.device import cpu_has_native_bf16, resolve_device  # noqa: E402
from synthhist.errors import UserError  # noqa: E402
from synthhist.gan import Generator  # noqa: E402
from synthhist.gan.cpu_memory import keep_freed_memory  # noqa: E402

PAPER_G = dict(z_dim=512, c_dim=2, w_dim=512, img_resolution=512, img_channels=3,
               mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512)
CONFIGS = ("reference", "reference+heap", "fp32", "auto", "bf16")


# ---- Baseline: our re-statement of the reference algorithm (docs/stylegan2.md §1.2, §1.4): fused grouped
# modconv, upfirdn2d as on CPU (on CUDA the reference has custom kernels, not reproduced here) ----

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


# ---- Measurement ----

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


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds) of each of `repeats` calls of fn()."""
    out = []
    for _ in range(repeats):
        sync(device)
        t, p = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        out.append((time.perf_counter() - t, time.process_time() - p))
    return out


def matmul_rate(device, n=2048, repeats=5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    return 2 * n**3 / min(w for w, _ in timed(lambda: a @ b, device, repeats))


def paper_generator(device):
    """Paper-shaped G, seed 0, with non-trivial noise strengths and biases (every term shows)."""
    torch.manual_seed(0)
    G = Generator(**PAPER_G).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("noise_strength", ".bias")) and "affine" not in name:
                p.normal_(0, 0.1)
    return G.to(device)


def worker(config: str, batch: int, device: torch.device, repeats: int, out: Path) -> None:
    """Time one configuration in this process; print JSON samples, save the image to `out`."""
    if config != "reference":
        keep_freed_memory()
    G = paper_generator(device)
    S = G.synthesis
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
    c = F.one_hot(torch.arange(batch, device=device) % G.c_dim, G.c_dim).float()
    with torch.inference_mode():
        ws = G.mapping(z, c)
        if config.startswith("reference"):
            fn = lambda: ref_synthesis(S, ws)  # noqa: E731
        else:
            fn = lambda: S(ws, precision=config)  # noqa: E731
        img = fn()  # warm-up
        torch.save(img.float().cpu(), out)
        samples = timed(fn, device, repeats)
    print(json.dumps({"wall": [w for w, _ in samples], "cpu": [p for _, p in samples]}), flush=True)


def run_worker(config, batch, device, repeats, out) -> dict:
    cmd = [sys.executable, __file__, "--worker", config, "--batches", str(batch), "--device", str(device),
           "--repeats", str(repeats), "--image", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {config} batch {batch} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@click.command()
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]")
@click.option("--batches", default="1,8", show_default=True, help="comma-separated batch sizes")
@click.option("--rounds", default=3, show_default=True, type=int, help="rounds; each runs every configuration once")
@click.option("--repeats", default=1, show_default=True, type=int, help="timed calls per worker (after one warm-up)")
@click.option("--configs", default=None, help=f"comma-separated, from {','.join(CONFIGS)} "
              "[default: reference,fp32 (+auto on CUDA) (+bf16 with native bf16)]")
@click.option("--worker", "worker_config", type=click.Choice(CONFIGS), default=None, hidden=True)
@click.option("--image", type=click.Path(path_type=Path), default=None, hidden=True)
def main(device, batches, rounds, repeats, configs, worker_config, image):
    try:
        dev = resolve_device(device)
    except UserError as e:
        raise SystemExit(f"Error: {e}") from None
    sizes = [int(b) for b in batches.split(",")]
    if worker_config is not None:
        return worker(worker_config, sizes[0], dev, repeats, image)
    if configs is None:
        configs = ["reference", "fp32"] + (["auto"] if dev.type == "cuda" else [])
        configs += ["bf16"] if dev.type == "cuda" or cpu_has_native_bf16() else []
    else:
        configs = configs.split(",")
        if unknown := set(configs) - set(CONFIGS):
            raise SystemExit(f"Error: unknown configurations {sorted(unknown)} (choose from {', '.join(CONFIGS)})")
    if "reference" not in configs:
        configs.insert(0, "reference")
    S = paper_generator(dev).synthesis
    flops, rate = conv_flops(S), matmul_rate(dev)
    del S
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    load0 = os.getloadavg()
    print(f"device {dev} ({name}), torch {torch.__version__}, load average {load0[0]:.1f} {load0[1]:.1f}")
    print(f"conv FLOPs/image {flops / 1e9:.1f} G; fp32 matmul {rate / 1e9:.0f} GFLOP/s; floor {rate / flops:.2f} img/s")
    walls = {(c, n): [] for c in configs for n in sizes}
    cpus = {(c, n): [] for c in configs for n in sizes}
    errs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = configs if r % 2 == 0 else configs[::-1]  # interleaved; neither always runs first
            for n in sizes:
                for c in order:
                    out = Path(tmp) / f"{c}_{n}.pt"
                    res = run_worker(c, n, dev, repeats, out)
                    walls[c, n] += res["wall"]
                    cpus[c, n] += res["cpu"]
                    print(f"  round {r + 1}/{rounds} batch {n} {c}: {n / statistics.median(res['wall']):.3f} img/s",
                          file=sys.stderr, flush=True)
            if r == 0:
                for n in sizes:
                    ref = torch.load(Path(tmp) / f"reference_{n}.pt")
                    for c in configs:
                        errs[c, n] = (torch.load(Path(tmp) / f"{c}_{n}.pt") - ref).abs().max().item()
    load1 = os.getloadavg()
    print(f"{rounds} rounds x {repeats} timed call(s) per configuration; medians; "
          f"load average after {load1[0]:.1f} {load1[1]:.1f}")
    print(f"{'batch':>5} {'config':<15} {'img/s':>7} {'speedup':>8} {'min..max':>13} {'CPU s/img':>9} {'speedup':>8} "
          f"{'max|err|':>9}")
    for n in sizes:
        base, base_cpu = statistics.median(walls["reference", n]), statistics.median(cpus["reference", n])
        for c in configs:
            w, p = statistics.median(walls[c, n]), statistics.median(cpus[c, n])
            span = f"{base / max(walls[c, n]):.2f}..{base / min(walls[c, n]):.2f}"
            print(f"{n:>5} {c:<15} {n / w:>7.3f} {base / w:>8.2f} {span:>13} {p / n:>9.2f} {base_cpu / p:>8.2f} "
                  f"{errs[c, n]:>9.1e}")


if __name__ == "__main__":
    main()
