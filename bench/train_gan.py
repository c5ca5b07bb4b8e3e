"""Benchmark GAN training speed (s/kimg) on a synthetic tile project: ADA vs no augmentation (baseline).

CPU (default, small):  PYTHONPATH=. python bench/train_gan.py
GPU, paper config:     PYTHONPATH=. python bench/train_gan.py --device cuda --res 512 --batch 8 --cbase 32768 \
                           --cmax 512 --map 8 --kimg 0.32 --fp16
"""

import io
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import click
import numpy as np
from PIL import Image


def _project(root: Path, px: int, slides: int = 4, tiles: int = 16) -> SimpleNamespace:
    from synthhist.wsi.tfrecord import write_tfrecord

    rng = np.random.default_rng(0)
    tfr = root / "tfrecords"
    tfr.mkdir(parents=True)
    rows = ["patient,slide,label"]
    for i in range(slides):
        cls = "ab"[i % 2]
        rows.append(f"p{i},s{i},{cls}")

        def recs(i=i):
            for j in range(tiles):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (px, px, 3), dtype=np.uint8)).save(buf, format="PNG")
                yield {"slide": f"s{i}", "image_raw": buf.getvalue(), "loc_x": j, "loc_y": 0}
        write_tfrecord(tfr / f"s{i}.tfrecords", recs())
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return SimpleNamespace(root=root, annotations=root / "labels.csv", tfrecord_dir=tfr, gan_dir=root / "gan")


@click.command()
@click.option("--res", default=32, show_default=True)
@click.option("--batch", default=16, show_default=True)
@click.option("--kimg", default=0.128, show_default=True, help="Per configuration; the first tick is warm-up.")
@click.option("--cbase", default=2048, show_default=True)
@click.option("--cmax", default=64, show_default=True)
@click.option("--map", "map_", default=2, show_default=True)
@click.option("--fp16", is_flag=True, help="fp16 in the top 4 resolutions (CUDA).")
@click.option("--workers", default=2, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Training uses CUDA when present; cpu hides it, cuda requires it.")
def main(res, batch, kimg, cbase, cmax, map_, fp16, workers, device):
    """Print s/kimg of the second half of a short run for --aug ada and --aug noaug."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("Error: --device cuda asked for, but CUDA is not available on this machine")

    from synthhist.cli import setup_logging
    from synthhist.gan.train import train_from_experiment

    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp), res)
        exp = SimpleNamespace(name="BENCH", kind="gan", outcome="label", tile_px=res, tile_um=100.0,
                              gan_kwargs={"gamma": 0.0002 * res * res / batch, "batch": batch})
        results = {}
        for aug in ("noaug", "ada"):
            t = time.time()
            run = train_from_experiment(project, exp, kimg=kimg, tick=kimg / 2, snap=1000, aug=aug, cbase=cbase,
                                        cmax=cmax, map_layers=map_, fp32=not fp16, workers=workers)
            log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
            results[aug] = {"s_per_kimg": log[-1]["s_per_kimg"], "wall_s": round(time.time() - t, 1),
                            **{k: v for k, v in log[-1].items() if k.startswith("mem")}}
        dev = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
        print(json.dumps({"device": dev, "res": res, "batch": batch, "cbase": cbase, "cmax": cmax, "map": map_,
                          "fp16": fp16, "results": results}, indent=2))


if __name__ == "__main__":
    main()
