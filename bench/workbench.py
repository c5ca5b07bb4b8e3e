"""Workbench latency: time from a slider move to the first (preview) and the final image over HTTP.

For each resolution (default 64, 128 and 512 px) writes a random-weight generator of the paper's shape
(z/w 512, mapping 8, 2 classes) in the native format, starts workbench.py on a free port and measures, through
/api/render/stream (JSON lines: the preview, i.e. the synthesis network's 'skip' RGB at a quarter of the
resolution (at most 128 px), then the final image and prediction):
  baseline  G.mapping + G.synthesis in-process for one class-blend image (no HTTP, no PNG);
  slider    one request per class-blend slider position, waiting for each: p50/p95 to the first and final image;
  drag      moves every 50 ms without waiting: from the last move to its first and final image.
Run: python bench/workbench.py [--res 64,128,512] [--requests 20] [--device cpu] [--classifier DIR]
"""

from __future__ import annotations

import json
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


def paper_generator(res: int, seed: int = 0):
    """Random-weight Generator with the paper's shape at resolution res."""
    from synthhist.gan import Generator

    torch.manual_seed(seed)
    return Generator(z_dim=512, c_dim=2, w_dim=512, img_resolution=res, img_channels=3,
                     mapping_kwargs={"num_layers": 8}).eval().requires_grad_(False)


def pct(xs: list[float], q: float) -> float:
    """q-th percentile (0..100) of xs."""
    return float(np.percentile(np.asarray(xs), q))


def ms(xs: list[float]) -> str:
    return f"p50 {pct(xs, 50) * 1e3:.0f} ms, p95 {pct(xs, 95) * 1e3:.0f} ms"


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


def timed_render(c: httpx.Client, params: dict, t0: float | None = None) -> tuple[float, float, dict]:
    """(seconds to the first line, seconds to the last line, last event) of one streamed render."""
    t0 = time.perf_counter() if t0 is None else t0
    first = None
    with c.stream("GET", "/api/render/stream", params=params) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            first = first or time.perf_counter() - t0
            event = json.loads(line)
    return first, time.perf_counter() - t0, event


def bench_resolution(res: int, n: int, drags: int, device: str, classifier: str | None) -> None:
    from synthhist.gan import save_network
    from synthhist.gan.blend import class_blend_ws
    from synthhist.gan.latent import z_from_seeds

    G = paper_generator(res).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        net_dir = Path(tmp) / f"paper{res}"
        save_network(net_dir, G, class_names=["class0", "class1"], tile_px=res, tile_um=400.0)
        z = z_from_seeds([1], 512, device)
        base = []
        with torch.inference_mode():
            for i in range(3):
                t0 = time.perf_counter()
                G.synthesis(class_blend_ws(G, z, 0, 1, i / 3), noise_mode="const")
                base.append(time.perf_counter() - t0)
        print(f"[{res} px] baseline in-process render: {ms(base)} (n={len(base)}, torch threads "
              f"{torch.get_num_threads()})", flush=True)
        del G
        proc, url = start_server(net_dir, classifier, device, Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=600) as c:
                params = {"seed": 1, "mode": "blend", "cls": 0, "end": 1}
                timed_render(c, {**params, "t": 0})  # warm-up
                firsts, finals = [], []
                for i in range(n):
                    first, final, _ = timed_render(c, {**params, "t": (i + 1) / (n + 1)})
                    firsts.append(first)
                    finals.append(final)
                print(f"[{res} px] slider (one request at a time): first image {ms(firsts)}; "
                      f"final image {ms(finals)} (n={n})", flush=True)
                drag_first, drag_final, superseded = [], [], 0
                for d in range(drags):
                    results: list = []

                    def move(t: float, t_sent: float, out=results):
                        out.append((t, *timed_render(c, {**params, "seed": 2 + d, "t": t}, t_sent)))

                    threads = []
                    for i in range(20):
                        th = threading.Thread(target=move, args=(i / 19, time.perf_counter()))
                        th.start()
                        threads.append(th)
                        time.sleep(0.05)
                    for th in threads:
                        th.join()
                    superseded += sum(1 for *_, e in results if e.get("superseded"))
                    last = next(r for r in results if r[0] == 1.0)
                    drag_first.append(last[1])
                    drag_final.append(last[2])
                print(f"[{res} px] drag (20 moves at 20 Hz): last move -> first image {ms(drag_first)}, "
                      f"final image {ms(drag_final)} (n={drags}); {superseded} of {20 * drags} moves superseded",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@click.command()
@click.option("--res", "resolutions", default="64,128,512", show_default=True, help="Comma-separated resolutions.")
@click.option("--requests", "n", default=20, show_default=True, help="Slider positions timed one after another.")
@click.option("--drags", default=3, show_default=True, help="Simulated drags (20 moves at 20 Hz each).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--classifier", default=None, help="Classifier to load (default: the demo one); prediction included.")
def main(resolutions, n, drags, device, classifier):
    """Measure the workbench's slider-to-image latency (first preview and final image) per resolution."""
    for res in (int(r) for r in resolutions.split(",")):
        bench_resolution(res, n, drags, device, classifier)


if __name__ == "__main__":
    main()
