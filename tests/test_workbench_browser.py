"""End to end: workbench.py in a subprocess, driven in Debian's chromium through Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed")]


def small_classifier(folder: Path) -> Path:
    """A random-weight Keras classifier (24 px, 32 um, two classes) saved with params.json, as load_classifier reads."""
    import json

    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 24, 3), name="tile_image")
    x = keras.layers.Conv2D(8, 3, activation="tanh", kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))(inp)
    x = keras.layers.GlobalAveragePooling2D(name="post_convolution")(x)
    x = keras.layers.Dense(2, kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="out-0")(x))
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "params.json").write_text(json.dumps({
        "tile_px": 24, "tile_um": 32, "model_type": "categorical", "outcomes": ["kind"],
        "outcome_labels": {"0": "kindA", "1": "kindB"},
        "hp": {"normalizer": None, "uq": False, "loss": "sparse_categorical_crossentropy"}}))
    return folder


@contextmanager
def workbench_server(tmp_path: Path, token: str, *extra: str):
    """workbench.py on a free port with a golden 32-px network and a small classifier; yields the printed URL."""
    from gan_fixtures import write_native

    write_native("g32_cond2", tmp_path / "g32", tile_px=32, tile_um=64.0)
    clf = small_classifier(tmp_path / "clf")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "workbench.py"), "--network", str(tmp_path / "g32"),
                             "--classifier", str(clf), "--port", "0", "--device", "cpu", "--data-dir", str(tmp_path),
                             "--token", token, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Workbench running at http://127.0.0.1:"), line + proc.stderr.read()
        yield line.split(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    with workbench_server(tmp_path, "browser-test-token") as url:
        yield url


def wait_for(page, expression: str, arg=None, timeout_s: float = 120.0) -> None:
    """Poll a JS expression until truthy (page.wait_for_function evals its predicate, which the page's CSP forbids)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def test_page_end_to_end(server, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        assert "token" not in page.url  # redirected to the clean URL; the HttpOnly cookie carries the token
        wait_for(page, "() => document.getElementById('image').src.startsWith('data:')")
        wait_for(page, "() => document.getElementById('prediction').querySelector('.bar-value') !== null")
        assert "classA" in page.text_content("#network-info")
        assert page.eval_on_selector("#image", "e => getComputedStyle(e).imageRendering") == "auto"  # smooth upscale
        assert "(loaded)" in page.text_content("#network-file")  # the picker shows the network given at start

        def snapshot():
            return page.get_attribute("#image", "src"), page.text_content("#prediction")

        def wait_changed(before):
            wait_for(page,
                     "([img, pred]) => document.getElementById('image').src !== img"
                     " && document.getElementById('prediction').textContent !== pred"
                     " && document.getElementById('status').textContent.startsWith('ready')", arg=list(before))

        first = snapshot()
        page.click("h1")  # focus the page, not a form field
        page.keyboard.press("ArrowRight")
        assert page.input_value("#seed") == "1"
        wait_changed(first)
        second = snapshot()

        page.check("input[name=mode][value=blend]")
        page.focus("#t")
        page.keyboard.press("End")  # slider to class B
        assert page.input_value("#t") == "1"
        wait_changed(second)
        wait_for(page, "() => document.getElementById('curve-status').textContent.includes('steps')")
        page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
        browser.close()
    assert (tmp_path / "workbench.png").stat().st_size > 10_000
    assert not errors, errors


def test_real_tile_projection_and_counterfactual(tmp_path):
    """Upload a PNG tile, project it (5 steps), move the counterfactual slider (image and prediction follow); cancel."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    tile = tmp_path / "tile.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tile)
    errors: list[str] = []
    with workbench_server(tmp_path, "projection-token") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        wait_for(page, "() => !document.getElementById('real-section').hidden")
        page.set_input_files("#proj-file", str(tile))
        page.fill("#proj-steps", "5")
        page.click("#proj-start")
        wait_for(page, "() => (document.getElementById('proj-recon').src || '').startsWith('data:image/png')")
        assert page.eval_on_selector("#proj-progress", "e => [e.value, e.max]") == [5, 5]
        assert "done · step 5/5" in page.text_content("#proj-status")
        assert page.get_attribute("#proj-real", "src").startswith("data:image/png")
        wait_for(page, "() => document.getElementById('proj-prediction').textContent.includes('prediction:')")
        before = page.get_attribute("#proj-cf", "src")
        assert before.startswith("data:image/png")
        page.focus("#proj-t")
        page.keyboard.press("End")  # slider to the other class
        wait_for(page, "() => document.getElementById('proj-cf-caption').textContent.includes('t = 1.00')")
        assert page.get_attribute("#proj-cf", "src") != before
        assert "kindA" in page.text_content("#proj-prediction")
        assert page.is_disabled("#proj-cancel") and not page.is_disabled("#proj-start")
        page.screenshot(path=str(tmp_path / "projection.png"), full_page=True)
        page.fill("#proj-steps", "5000")
        page.click("#proj-start")
        wait_for(page, "() => !document.getElementById('proj-cancel').disabled")
        page.click("#proj-cancel")
        wait_for(page, "() => document.getElementById('proj-status').textContent.startsWith('cancelled')")
        assert not page.is_disabled("#proj-start")
        browser.close()
    assert not errors, errors
