"""python -m synthhist.demo.sheet: the contact sheet (real | synthetic tiles per class) and the stacked class blends."""

import os
import subprocess
import sys

import numpy as np
import pytest
from gan_fixtures import golden_generator, write_native
from PIL import Image

from synthhist.demo.quality import real_tiles, seed_images
from synthhist.demo.sheet import CAPTION_PX, GAP, MARGIN, PANEL_GAP
from synthhist.explain.video import resize_frames
from testkit import ROOT


def sheet(*args, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "synthhist.demo.sheet", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"sheet failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def cell(img: np.ndarray, row: int, side: int, i: int, *, cols: int, rows: int, px: int) -> np.ndarray:
    """Tile i of the panel of class `row`, side 0 (real) or 1 (synthetic), in a sheet of this layout."""
    panel_w, panel_h = cols * (px + GAP) - GAP, CAPTION_PX + rows * (px + GAP) - GAP
    y = MARGIN + row * (panel_h + PANEL_GAP) + CAPTION_PX + (i // cols) * (px + GAP)
    x = MARGIN + side * (panel_w + PANEL_GAP) + (i % cols) * (px + GAP)
    return img[y:y + px, x:x + px].astype(int)


def test_demo_contact_sheet_and_blends(tmp_path):
    from synthhist.gan import load_network

    out, blend = tmp_path / "sheet.png", tmp_path / "blend.png"
    proc = sheet("--network", "demo", "--out", out, "--blend", blend, "--n", 4, "--cols", 2, "--tile-px", 96,
                 "--blend-seeds", "0,1", "--blend-steps", 3)
    assert "painted real tiles" in proc.stderr
    img = np.asarray(Image.open(out).convert("RGB"))
    # two classes x (real | synthetic) panels of 2 x 2 tiles of 96 px, each under a caption
    panel_w, panel_h = 2 * 96 + GAP, CAPTION_PX + 2 * 96 + GAP
    assert img.shape == (2 * MARGIN + 2 * panel_h + PANEL_GAP, 2 * MARGIN + 2 * panel_w + PANEL_GAP, 3)

    net = load_network("demo", device="cpu")
    res = net.G.img_resolution
    layout = dict(cols=2, rows=2, px=96)
    for k, kind in enumerate(["gland", "spindle"]):
        painted = real_tiles(kind, 1, res, net.tile_um, mpp=1.5, seed=1000 * k)
        real = resize_frames(painted, 96)[0]
        fake = resize_frames(seed_images(net.G, k, [3]), 96)[0]
        assert np.abs(cell(img, k, 0, 0, **layout) - real).max() <= 1       # real panel: painted tissue of the class
        assert np.abs(cell(img, k, 1, 3, **layout) - fake).max() <= 1       # synthetic panel: seeds 0..n-1 in order
        for side in (0, 1):
            y, x = MARGIN + k * (panel_h + PANEL_GAP), MARGIN + side * (panel_w + PANEL_GAP)
            caption = img[y:y + CAPTION_PX, x:x + panel_w]
            assert (caption < 100).any() and (caption == 255).mean() > 0.5  # a caption: dark text on white
    assert np.abs(cell(img, 0, 0, 0, **layout) - cell(img, 1, 0, 0, **layout)).mean() > 5  # the classes differ

    strips = np.asarray(Image.open(blend).convert("RGB"))
    assert strips.shape == (2 * MARGIN + CAPTION_PX + 2 * 96 + GAP, 2 * MARGIN + 3 * 96 + 2 * GAP, 3)
    first = strips[MARGIN + CAPTION_PX:MARGIN + CAPTION_PX + 96, MARGIN:MARGIN + 96].astype(int)
    assert np.abs(first - resize_frames(seed_images(net.G, 0, [0]), 96)[0]).max() <= 1  # seed 0 at t = 0: class 0


@pytest.fixture(scope="module")
def net32(tmp_path_factory):
    return write_native("g32_cond2", tmp_path_factory.mktemp("net") / "g32")


def test_real_tiles_from_data(tmp_path, net32):
    data = tmp_path / "data"
    colours = {"classA": (200, 30, 30), "classB": (30, 30, 200)}
    for name, colour in colours.items():
        (data / name).mkdir(parents=True)
        for i in range(3 if name == "classA" else 1):
            Image.new("RGB", (48, 40), colour).save(data / name / f"t{i}.png")  # not square: centre-cropped
    out = tmp_path / "sheet.png"
    sheet("--network", net32, "--out", out, "--data", data, "--n", 2, "--cols", 2, "--tile-px", 40)
    img = np.asarray(Image.open(out).convert("RGB"))
    layout = dict(cols=2, rows=1, px=40)
    for k, colour in enumerate(colours.values()):
        assert np.abs(cell(img, k, 0, 0, **layout) - colour).max() <= 1
    assert (cell(img, 1, 0, 1, **layout) == 255).all()  # classB has one tile: the second cell stays blank
    G = golden_generator("g32_cond2")
    assert np.abs(cell(img, 1, 1, 1, **layout) - resize_frames(seed_images(G, 1, [1]), 40)[0]).max() <= 1


@pytest.mark.parametrize("extra, msg", [
    ((), "is not a demo tissue (gland, spindle): pass --data"),
    (("--data", "DATA"), "the tiles have no classes"),
])
def test_bad_input(tmp_path, net32, extra, msg):
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (32, 32), "red").save(tmp_path / "flat" / "a.png")
    extra = [str(tmp_path / "flat") if a == "DATA" else a for a in extra]
    proc = sheet("--network", net32, "--out", tmp_path / "s.png", *extra, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("Error:") and msg in last, proc.stderr
    assert not (tmp_path / "s.png").exists()

