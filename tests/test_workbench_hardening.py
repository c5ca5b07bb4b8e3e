"""Workbench hardening: crashing loaders in a child, request limits, same origin, cookies, symlinks, loopback hosts."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from synthhist.workbench.app import LOOPBACK_HOSTS, WorkbenchConfig, create_app
from synthhist.workbench.files import AllowedFolders
from synthhist.workbench.guard import MAX_BODY
from synthhist.workbench.serve import allowed_hosts
from test_workbench import BASE, decode, toy_renderer

CRASH_HOOK = """
import os, signal, sys, time
def _crash(event, args):  # the loader segfaults when it opens a file named crash*, hangs on hang*
    name = os.path.basename(str(args[0])) if event == "open" else ""
    if name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if name.startswith("hang"):
        time.sleep(600)
sys.addaudithook(_crash)
"""


def crash_hook(tmp_path, monkeypatch) -> None:
    """Make spawned children run CRASH_HOOK at start-up (a sitecustomize on their PYTHONPATH)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_HOOK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), *sys.path]))


@pytest.fixture
def client(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=LOOPBACK_HOSTS), renderer=toy_renderer())
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.mark.slow
def test_loader_crash_in_child_is_a_400_and_the_server_keeps_serving(tmp_path, monkeypatch):
    """A file that makes the loader segfault kills only the child: one-line 400, renders go on."""
    from gan_fixtures import write_native

    crash_hook(tmp_path, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    (data / "crash.pkl").write_bytes(b"any bytes: the child dies when it opens the file")
    write_native("g32_cond2", data / "g32", tile_px=32, tile_um=64.0)
    app = create_app(WorkbenchConfig(data_dirs=[data]), renderer=toy_renderer())
    with TestClient(app) as c:
        before = c.get("/api/render", params={"seed": 1, "cls": 0}).json()["image"]
        r = c.post("/api/load", json={"network": "crash.pkl"})
        assert r.status_code == 400, r.text
        assert "the loader crashed (killed by SIGSEGV)" in r.json()["detail"] and "\n" not in r.json()["detail"]
        assert c.get("/api/info").json()["network"]["source"] == "toy"  # the old network stays
        assert c.get("/api/render", params={"seed": 1, "cls": 0}).json()["image"] == before
        info = c.post("/api/load", json={"network": "g32"}).json()  # a good file still loads (in a child)
        assert info["network"]["class_names"] == ["classA", "classB"] and info["network"]["tile_um"] == 64.0
        assert decode(c.get("/api/render", params={"seed": 1, "cls": 1}).json()["image"]).shape == (32, 32, 3)


@pytest.mark.slow
def test_loader_that_hangs_is_stopped(tmp_path, monkeypatch):
    from synthhist.errors import UserError
    from synthhist.workbench import sandbox

    crash_hook(tmp_path, monkeypatch)
    (tmp_path / "hang.pkl").write_bytes(b"x")
    t0 = time.monotonic()
    with pytest.raises(UserError, match="took longer than 30 s: stopped"):
        sandbox.load_network(tmp_path / "hang.pkl", "cpu", timeout_s=30)
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_failed_classifier_leaves_the_pair_unchanged(tmp_path):
    """Loading a good network with a broken classifier loads neither: load fully or not at all."""
    from gan_fixtures import write_native

    write_native("g32_cond2", tmp_path / "g32", tile_px=32, tile_um=64.0)
    (tmp_path / "clf").mkdir()
    (tmp_path / "clf" / "params.json").write_text('{"tile_px": 16}')
    (tmp_path / "clf" / "model.keras").write_bytes(b"not a zip")
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=toy_renderer())
    with TestClient(app) as c:
        r = c.post("/api/load", json={"network": "g32", "classifier": "clf"})
        assert r.status_code == 400 and "clf" in r.json()["detail"]
        info = c.get("/api/info").json()
        assert info["network"]["source"] == "toy" and info["classifier"]["tile_px"] == 16
        assert c.get("/api/render", params={"seed": 2, "cls": 0}).status_code == 200


def test_body_limit_and_no_echo(client):
    big = b'{"network": "' + b"A" * (MAX_BODY + 10) + b'"}'
    r = client.post("/api/load", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and b"AAAA" not in r.content

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(100):
            yield b"A" * 4096
    r = client.post("/api/load", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    secret = "x" * 5000 + "SENTINEL"
    r = client.post("/api/load", json={"network": secret})
    assert r.status_code == 422 and "SENTINEL" not in r.text and "network" in r.json()["detail"]
    r = client.get("/api/render", params={"seed": "SENTINEL"})
    assert r.status_code == 422 and "SENTINEL" not in r.text and r.json()["detail"].startswith("seed:")


def test_json_only_and_same_origin(client):
    body = '{"network": "x.pkl"}'
    r = client.post("/api/load", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/api/load", content=body, headers={"content-type": "application/json", "origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/load", content=body, headers={"content-type": "application/json",
                                                        "referer": "http://evil.example/page"})
    assert r.status_code == 403
    r = client.post("/api/load", content=body, headers={"content-type": "application/json", "origin": "null"})
    assert r.status_code == 403
    assert client.get("/api/info", headers={"origin": "http://evil.example"}).status_code == 403
    r = client.post("/api/load", content=body, headers={"content-type": "application/json", "origin": BASE})
    assert r.status_code == 400 and "does not exist" in r.json()["detail"]  # same origin: on to the handler


def test_security_headers(client):
    for path in ("/", "/static/app.js", "/api/info", "/api/nope"):
        h = client.get(path).headers
        assert h["x-frame-options"] == "DENY" and "default-src 'self'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]


def test_token_cookie_per_port_and_clean_url(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], token="s3cret"), renderer=toy_renderer())
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        r = c.get("/", params={"token": "s3cret"}, headers={"accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"  # a browser goes on to the URL without it
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("synthhist_workbench_token_8123=s3cret;")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert c.get("/").status_code == 200 and c.get("/api/info").status_code == 200  # the cookie carries it
    with TestClient(app, base_url="http://127.0.0.1:8124") as c:
        c.cookies.set("synthhist_workbench_token_8123", "s3cret")
        assert c.get("/api/info").status_code == 401  # another port's cookie does not count


def test_symlinked_files_inside_a_model_folder_are_refused(tmp_path):
    from synthhist.errors import UserError

    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "network.safetensors").write_bytes(b"x")
    (outside / "network.json").write_text("{}")
    (outside / "training_options.json").write_text("{}")
    for name in ("weights_link", "config_link"):
        (root / name).mkdir()
    os.symlink(outside / "network.safetensors", root / "weights_link" / "network.safetensors")
    (root / "weights_link" / "network.json").write_text("{}")
    os.symlink(outside / "network.json", root / "config_link" / "network.json")
    (root / "config_link" / "network.safetensors").write_bytes(b"x")
    (root / "run").mkdir()
    (root / "run" / "snap.pkl").write_bytes(b"x")
    os.symlink(outside / "training_options.json", root / "run" / "training_options.json")
    (root / "ok").mkdir()
    (root / "ok" / "network.json").write_text("{}")
    (root / "ok" / "network.safetensors").write_bytes(b"x")
    folders = AllowedFolders([root])
    for bad in ("weights_link", "weights_link/network.json", "config_link", "config_link/network.safetensors",
                "run/snap.pkl"):
        with pytest.raises(UserError, match="links outside the data folders"):
            folders.resolve(bad)
    assert folders.resolve("ok") == (root / "ok").resolve()
    assert folders.resolve("ok/network.json").name == "network.json"


@pytest.mark.parametrize("bind,host_header", [("127.0.0.2", "127.0.0.2:8000"), ("::1", "[::1]:8000"),
                                              ("127.0.0.1", "localhost:8000"), ("::1", "localhost")])
def test_any_loopback_bind_accepts_its_own_host_header(tmp_path, bind, host_header):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=allowed_hosts(bind)), renderer=toy_renderer())
    with TestClient(app) as c:
        assert c.get("/api/info", headers={"host": host_header}).status_code == 200
        assert c.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
        assert c.get("/api/info", headers={"host": "[::1"}).status_code == 400
    assert allowed_hosts("0.0.0.0") is None


def test_unknown_gan_microns_refused_not_invented(tmp_path):
    """No scale is invented when the GAN's µm are unknown: the page says why; --gan-um supplies it."""
    renderer = toy_renderer()
    renderer.net.tile_um = None
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=renderer)
    with TestClient(app) as c:
        assert "tile size in microns is unknown" in c.get("/api/info").json()["bridge"]
        r = c.get("/api/render", params={"seed": 1, "cls": 0}).json()
        assert r["prediction"] is None and "--gan-um" in r["error"] and decode(r["image"]).shape == (32, 32, 3)
        r = c.get("/api/curve", params={"cls": 0, "end": 1, "steps": 3})
        assert r.status_code == 400 and "microns is unknown" in r.json()["detail"]
    renderer.gan_um = 200.0
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=renderer)
    with TestClient(app) as c:
        assert "(16 of 32 px)" in c.get("/api/info").json()["bridge"]
        assert np.isclose(sum(c.get("/api/render", params={"seed": 1, "cls": 0}).json()["prediction"]["values"]), 1)


@pytest.mark.slow
def test_classifier_picked_in_the_page_is_rebuilt_from_arrays(tmp_path):
    """A Keras classifier loaded in the child comes back as config + weights and predicts as an in-process load."""
    from synthhist.classifier import load_classifier
    from test_workbench_browser import small_classifier

    small_classifier(tmp_path / "clf")
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=toy_renderer())
    with TestClient(app) as c:
        info = c.post("/api/load", json={"classifier": "clf"}).json()
        assert info["classifier"]["outcome_labels"] == ["kindA", "kindB"] and info["classifier"]["tile_px"] == 24
        assert info["network"]["source"] == "toy"  # the network stays
    tiles = np.random.default_rng(0).integers(0, 256, (4, 24, 24, 3), dtype=np.uint8)
    np.testing.assert_allclose(app.state.renderer.clf.predict(tiles), load_classifier(tmp_path / "clf").predict(tiles),
                               atol=1e-6)
