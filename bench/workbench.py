"""Workbench latency: time from a slider move to the new image over HTTP, vs rendering in-process.

Writes a random-weight paper-shape generator (512 px, z/w 512, mapping 8, 2 classes) in the native
format, starts workbench.py on a free port, and measures:
  baseline  G.mapping + G.synthesis in-process for one class-blend image (no HTTP, no PNG);
  slider    one /api/render per class-blend slider position, waiting for each (p50/p95);
  drag      a slider drag: moves every 50 ms without waiting; time from the last move to its image.
Run: python bench/workbench.py [--requests 30] [--device cpu] [--classifier DIR]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def paper_generator(seed: int = 0):
    """Random-weight Generator with the paper's 512-px shape."""
    from synthhist.gan import Generator

    torch.manual_seed(seed)
    return Generator(z_dim=512, c_dim=2, w_dim=512, img_resolution=512, img_channels=3,
                     mapping_kwargs={"num_layers": 8}).eval().requires_grad_(False)


def pct(xs: list[float], q: float) -> float:
    """q-th percentile (0..100) of xs."""
    return float(np.percentile(np.asarray(xs), q))


def start_server(network: Path, classifier: str | None, device: str, data_dir: Path):
    """workbench.py on a free port; returns (process, base URL)."""
    args = [sys.executable, str(ROOT / "workbench.py"), "--network", str(network), "--port", "0",
            "--device", device, "--data-dir", str(data_dir)]
    if classifier:
        args += ["--classifier", classifier]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if not line.startswith("Workbench running at "):
        proc.kill()
        raise SystemExit(f"workbench.py did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" at ", 1)[1].strip().rstrip("/")


@click.command()
@click.option("--requests", "n", default=30, show_default=True, help="Slider positions timed one after another.")
@click.option("--drags", default=5, show_default=True, help="Simulated drags (20 moves at 20 Hz each).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--classifier", default=None, help="Classifier folder to load too (prediction included in timings).")
def main(n, drags, device, classifier):
    """Measure the workbench's slider-to-image latency at 512 px."""
    from synthhist.gan import save_network
    from synthhist.gan.blend import class_blend_ws
    from synthhist.gan.latent import z_from_seeds

    G = paper_generator().to(device)
    with tempfile.TemporaryDirectory() as tmp:
        net_dir = Path(tmp) / "paper512"
        save_network(net_dir, G, class_names=["class0", "class1"], tile_px=512, tile_um=400.0)
        z = z_from_seeds([1], 512, device)
        base = []
        with torch.inference_mode():
            for i in range(3):
                t0 = time.perf_counter()
                G.synthesis(class_blend_ws(G, z, 0, 1, i / n), noise_mode="const")
                base.append(time.perf_counter() - t0)
        print(f"baseline in-process render: p50 {pct(base, 50) * 1e3:.0f} ms, p95 {pct(base, 95) * 1e3:.0f} ms "
              f"(n={len(base)}, torch threads {torch.get_num_threads()})")
        del G
        proc, url = start_server(net_dir, classifier, device, Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                params = {"seed": 1, "mode": "blend", "cls": 0, "end": 1}
                c.get("/api/render", params={**params, "t": 0}).raise_for_status()  # warm-up
                lat = []
                for i in range(n):
                    t0 = time.perf_counter()
                    c.get("/api/render", params={**params, "t": (i + 1) / (n + 1)}).raise_for_status()
                    lat.append(time.perf_counter() - t0)
                print(f"slider (one request at a time): p50 {pct(lat, 50) * 1e3:.0f} ms, p95 {pct(lat, 95) * 1e3:.0f} ms, "
                      f"mean {statistics.mean(lat) * 1e3:.0f} ms (n={n})")
                ends, superseded = [], 0
                for d in range(drags):
                    results: list = []

                    def move(t: float, out=results):
                        r = c.get("/api/render", params={**params, "seed": 2 + d, "t": t}).json()
                        out.append((time.perf_counter(), r))

                    threads = []
                    for i in range(20):
                        th = threading.Thread(target=move, args=(i / 19,))
                        th.start()
                        threads.append(th)
                        last_move = time.perf_counter()
                        time.sleep(0.05)
                    for th in threads:
                        th.join()
                    superseded += sum(1 for _, r in results if r.get("superseded"))
                    done = [when for when, r in results if not r.get("superseded") and r["params"]["t"] == 1.0]
                    ends.append(done[0] - last_move)
                print(f"drag (20 moves at 20 Hz): last move -> its image p50 {pct(ends, 50) * 1e3:.0f} ms, "
                      f"p95 {pct(ends, 95) * 1e3:.0f} ms (n={drags}); {superseded} of {20 * drags} moves superseded")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
