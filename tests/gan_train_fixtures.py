"""Tiny GAN-training projects for tests: annotations + TFRecords of coloured textures + a GAN config."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from synthhist.wsi.tfrecord import write_tfrecord

# Plainly different classes: reddish vs bluish noisy textures (RGB means).
COLOURS = {"blue": (60, 80, 200), "red": (200, 60, 60)}


def texture(rng: np.random.Generator, rgb, px: int) -> np.ndarray:
    """uint8 [px, px, 3] noisy texture around a colour."""
    base = np.asarray(rgb, np.float32)
    img = base + rng.normal(0, 25, (px, px, 1)) + rng.normal(0, 10, (px, px, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def png(img: np.ndarray) -> bytes:
    """PNG bytes of an HWC uint8 image."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_project(root: Path, px: int = 16, slides_per_class: dict | None = None, tiles: int = 12,
                 gan_kwargs: dict | None = None, name: str = "TINY", tile_px: int | None = None,
                 tile_um: float = 100.0, seed: int = 0, no_tiles: tuple = ()) -> SimpleNamespace:
    """Write root/{labels.csv, tfrecords/<px>px_<um>um/*.tfrecords, tiny_gan.json}; return paths.

    slides_per_class maps class name -> number of slides (colour from COLOURS, grey for others);
    tile_px (config) may differ from px (tiles written) to make a wrong-size dataset; classes in no_tiles
    are annotated but get no TFRecords.
    """
    rng = np.random.default_rng(seed)
    slides_per_class = {"blue": 2, "red": 2} if slides_per_class is None else slides_per_class
    tile_px = tile_px or px
    root = Path(root)
    tfr = root / "tfrecords" / f"{tile_px}px_{int(tile_um)}um"
    tfr.mkdir(parents=True, exist_ok=True)
    rows = ["patient,slide,colour"]
    for cls, n in slides_per_class.items():
        for i in range(n):
            slide = f"{cls}-{i}"
            rows.append(f"P{slide},{slide},{cls}")
            rgb = COLOURS.get(cls, (128, 128, 128))
            if tiles and cls not in no_tiles:
                write_tfrecord(tfr / f"{slide}.tfrecords",
                               ({"slide": slide, "image_raw": png(texture(rng, rgb, px)), "loc_x": j, "loc_y": 0}
                                for j in range(tiles)))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = {"name": name, "kind": "gan", "annotations": str(root / "labels.csv"), "outcome": "colour",
           "tile_px": tile_px, "tile_um": tile_um,
           "gan_kwargs": {"model": "stylegan3", "cfg": "stylegan2", "gamma": 0.1, "batch": 4, "gpus": 1, "kimg": 1,
                          **(gan_kwargs or {})}}
    (root / "tiny_gan.json").write_text(json.dumps(cfg, indent=2))
    return SimpleNamespace(root=root, annotations=root / "labels.csv", tfrecord_dir=tfr, gan_dir=root / "gan",
                           config=root / "tiny_gan.json", cfg=cfg)


def experiment(cfg: dict) -> SimpleNamespace:
    """Stand-in for synthhist.config.Experiment (fields the trainer reads)."""
    return SimpleNamespace(name=cfg["name"], kind=cfg["kind"], outcome=cfg["outcome"], tile_px=cfg["tile_px"],
                           tile_um=cfg["tile_um"], gan_kwargs=dict(cfg["gan_kwargs"]))


@pytest.fixture(scope="module", autouse=False)
def one_thread():
    """Scripts in these tests run with one intra-op thread: on a shared 2-core runner, several processes with
    2 spinning OpenMP threads each slow tiny-network training down ~20x."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield


# Options for CPU tests: tiny networks, fp32, one DataLoader worker.
TINY = ["--cbase", "256", "--cmax", "32", "--map", "2", "--workers", "1", "--fp32"]
