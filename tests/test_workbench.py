"""Workbench API in-process: renders, curves, validation (4xx never 500), token, allowed folders, worker."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from explain_fakes import ToyClassifier, ToyGenerator, ToyNetwork
from synthhist.workbench.app import LOOPBACK_HOSTS, WorkbenchConfig, create_app
from synthhist.workbench.files import AllowedFolders
from synthhist.workbench.renderer import Renderer
from synthhist.workbench.worker import LatestWinsWorker, Superseded

BASE = "http://127.0.0.1"


def toy_renderer(c_dim=2, clf=True) -> Renderer:
    torch.manual_seed(0)
    r = Renderer("cpu")
    r.net = ToyNetwork(ToyGenerator(c_dim=c_dim, img_resolution=32), tile_px=32, tile_um=200.0)
    r.clf = ToyClassifier(tile_px=16, tile_um=100.0) if clf else None
    return r


@pytest.fixture
def client(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=LOOPBACK_HOSTS), renderer=toy_renderer())
    with TestClient(app, base_url=BASE) as c:
        yield c


def decode(data_url: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_page_and_static(client):
    r = client.get("/")
    assert r.status_code == 200 and "app.js" in r.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in client.get("/").text.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_info(client):
    info = client.get("/api/info").json()
    net = info["network"]
    assert net["resolution"] == 32 and net["c_dim"] == 2 and net["class_names"] == ["class 0", "class 1"]
    assert net["num_ws"] == 8 and [l["group"] for l in net["layers"]].count("coarse") == 3
    assert info["classifier"]["tile_px"] == 16 and "crop 200 µm -> 100 µm (16 of 32 px)" in info["bridge"]


def test_render_modes_and_blending_identities(client):
    a = client.get("/api/render", params={"seed": 3, "cls": 0}).json()
    b = client.get("/api/render", params={"seed": 3, "cls": 1}).json()
    img_a, img_b = decode(a["image"]), decode(b["image"])
    assert img_a.shape == (32, 32, 3) and decode(a["clf_image"]).shape == (16, 16, 3)
    assert not np.array_equal(img_a, img_b)
    assert a["prediction"]["labels"] == ["a", "b"] and abs(sum(a["prediction"]["values"]) - 1) < 1e-5
    blend0 = client.get("/api/render", params={"seed": 3, "mode": "blend", "cls": 0, "end": 1, "t": 0}).json()
    blend1 = client.get("/api/render", params={"seed": 3, "mode": "blend", "cls": 0, "end": 1, "t": 1}).json()
    np.testing.assert_array_equal(decode(blend0["image"]), img_a)
    assert np.abs(decode(blend1["image"]).astype(int) - img_b).max() <= 1
    half = client.get("/api/render", params={"seed": 3, "mode": "blend", "cls": 0, "end": 1, "t": 0.5}).json()
    assert half["prediction"]["values"] != a["prediction"]["values"]
    every = ",".join(map(str, range(8)))
    swap = client.get("/api/render", params={"seed": 3, "mode": "layers", "cls": 0, "end": 1, "layers": every, "f": 1}).json()
    none = client.get("/api/render", params={"seed": 3, "mode": "layers", "cls": 0, "end": 1, "layers": "", "f": 1}).json()
    assert np.abs(decode(swap["image"]).astype(int) - img_b).max() <= 1
    np.testing.assert_array_equal(decode(none["image"]), img_a)
    coarse = client.get("/api/render", params={"seed": 3, "mode": "layers", "cls": 0, "end": 1, "layers": "0,1,2,3", "f": 0.5}).json()
    assert not np.array_equal(decode(coarse["image"]), img_a)
    for noise in ("random", "none"):
        r = client.get("/api/render", params={"seed": 3, "cls": 0, "noise": noise, "psi": 0.5})
        assert r.status_code == 200


def test_curve_matches_renders(client):
    c = client.get("/api/curve", params={"seed": 5, "cls": 0, "end": 1, "steps": 5}).json()
    assert c["t"] == [0, 0.25, 0.5, 0.75, 1] and len(c["values"]) == 2 and len(c["values"][0]) == 5
    for i, t in enumerate(c["t"]):
        r = client.get("/api/render", params={"seed": 5, "mode": "blend", "cls": 0, "end": 1, "t": t}).json()
        np.testing.assert_allclose([v[i] for v in c["values"]], r["prediction"]["values"], atol=1e-5)


@pytest.mark.parametrize("path,params", [
    ("/api/render", {"seed": -1}), ("/api/render", {"seed": 2**32}), ("/api/render", {"seed": "abc"}),
    ("/api/render", {"seed": 1.5}), ("/api/render", {"psi": 5}), ("/api/render", {"psi": "nan"}),
    ("/api/render", {"noise": "loud"}), ("/api/render", {"mode": "mix"}), ("/api/render", {"t": 2, "cls": 0}),
    ("/api/render", {"f": -0.1}), ("/api/render", {"layers": "0,,1", "cls": 0}),
    ("/api/render", {"layers": "a", "cls": 0}), ("/api/render", {"layers": "1" * 700}),
    ("/api/render", {"cls": 2}), ("/api/render", {"cls": -1}), ("/api/render", {}),
    ("/api/render", {"cls": 0, "mode": "blend"}), ("/api/render", {"cls": 0, "mode": "blend", "end": 9}),
    ("/api/render", {"cls": 0, "mode": "layers", "end": 1, "layers": "8"}),
    ("/api/render", {"cls": 10**30}),
    ("/api/curve", {"steps": 1}), ("/api/curve", {"steps": 1000}), ("/api/curve", {"cls": 0, "end": 2}),
])
def test_bad_parameters_are_4xx(client, path, params):
    r = client.get(path, params=params)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["detail"]


def test_bad_load_requests(client, tmp_path):
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    for body in ({}, {"network": ""}, {"network": 5}, {"network": "../etc/passwd"}, {"network": "/etc/passwd"},
                 {"network": "missing.pkl"}, {"classifier": "broken.pkl"}, {"network": "broken.pkl"}):
        r = client.post("/api/load", json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert r.json()["detail"]
    assert client.post("/api/load", content=b"{oops", headers={"content-type": "application/json"}).status_code == 422


def test_no_network_loaded(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=Renderer("cpu"))
    with TestClient(app) as c:
        assert c.get("/api/info").json()["network"] is None
        r = c.get("/api/render", params={"seed": 1})
        assert r.status_code == 400 and "no network loaded" in r.json()["detail"]
        assert c.get("/api/curve").status_code == 400


def test_unconditional_and_no_classifier(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=toy_renderer(c_dim=0, clf=False))
    with TestClient(app) as c:
        r = c.get("/api/render", params={"seed": 1}).json()
        assert r["clf_image"] is None and r["prediction"] is None and decode(r["image"]).shape == (32, 32, 3)
        assert c.get("/api/render", params={"seed": 1, "cls": 0}).status_code == 400
        assert c.get("/api/render", params={"seed": 1, "mode": "blend", "end": 0}).status_code == 400
        assert c.get("/api/curve").status_code == 400


def test_token_required_everywhere(tmp_path):
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], token="s3cret"), renderer=toy_renderer())
    with TestClient(app) as c:
        for path in ("/", "/static/app.js", "/api/info", "/api/files", "/api/render?seed=1&cls=0"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers={"X-Workbench-Token": "wrong"}).status_code == 401
            assert c.get(path, params={"token": "s3cre"}).status_code == 401
        assert c.get("/api/info", headers={"X-Workbench-Token": "s3cret"}).status_code == 200
        c.cookies.clear()
        assert c.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        c.cookies.clear()
        r = c.get("/", params={"token": "s3cret"})
        assert r.status_code == 200 and "synthhist_workbench_token" in r.headers["set-cookie"]
        assert c.get("/static/app.js").status_code == 200  # the cookie now carries the token
        c.cookies.clear()
        assert c.get("/static/app.js").status_code == 401


def test_loopback_rejects_foreign_host_header(client):
    assert client.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/info", headers={"host": "localhost:9999"}).status_code == 200


def test_allowed_folders(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    (root / "runs" / "00000-x").mkdir(parents=True)
    (root / "runs" / "00000-x" / "network-snapshot-000100.pkl").write_bytes(b"x")
    (root / "native").mkdir()
    (root / "native" / "G.safetensors").write_bytes(b"x")
    (root / "native" / "G.json").write_text("{}")
    (root / "clf" / "variables").mkdir(parents=True)
    (root / "clf" / "params.json").write_text("{}")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.pkl").write_bytes(b"x")
    outside.mkdir()
    (outside / "secret.pkl").write_bytes(b"x")
    os.symlink(outside / "secret.pkl", root / "link.pkl")
    os.symlink(outside, root / "linkdir")
    folders = AllowedFolders([root])
    found = folders.candidates()
    assert sorted(found["networks"]) == sorted([str(root / "link.pkl"), str(root / "native"),
                                                str(root / "runs/00000-x/network-snapshot-000100.pkl")])
    assert found["classifiers"] == [str(root / "clf")]
    assert folders.resolve("runs/00000-x/network-snapshot-000100.pkl").name == "network-snapshot-000100.pkl"
    assert folders.resolve(str(root / "clf")) == (root / "clf").resolve()
    from synthhist.errors import UserError
    for bad in ("../outside/secret.pkl", "runs/../../outside/secret.pkl", str(outside / "secret.pkl"),
                "link.pkl", "linkdir/secret.pkl", "nope.pkl", "", "a\x00b", str(tmp_path)):
        with pytest.raises(UserError):
            folders.resolve(bad)
    app = create_app(WorkbenchConfig(data_dirs=[root]), renderer=toy_renderer())
    with TestClient(app) as c:
        assert c.get("/api/files").json()["classifiers"] == [str(root / "clf")]
        r = c.post("/api/load", json={"network": "link.pkl"})
        assert r.status_code == 400 and "outside the data folders" in r.json()["detail"]


def test_worker_latest_request_wins():
    w = LatestWinsWorker(("render", "curve"))
    gate = threading.Event()
    running = w.submit("render", gate.wait)
    time.sleep(0.05)  # the first job is running now
    older = w.submit("render", lambda: "older")
    curve = w.submit("curve", lambda: "curve")
    newer = w.submit("render", lambda: "newer")
    with pytest.raises(Superseded):
        older.result(timeout=1)
    gate.set()
    assert running.result(timeout=5) is True and newer.result(timeout=5) == "newer"
    assert curve.result(timeout=5) == "curve"
    failing = w.submit("render", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=5)
    w.close()


def test_worker_steps_long_jobs_between_renders():
    """A stepped (generator) job lets renders run between its steps; a newer one in its lane replaces it."""
    w = LatestWinsWorker(("render", "curve"))
    log: list[str] = []
    gate = threading.Event()

    def stepped(name, n):
        def job():
            for i in range(n):
                log.append(f"{name}{i}")
                gate.wait()
                yield
            return name
        return job

    old_curve = w.submit("curve", stepped("old", 100))
    time.sleep(0.05)
    render = w.submit("render", lambda: log.append("render") or "image")
    new_curve = w.submit("curve", stepped("new", 3))
    gate.set()
    assert render.result(timeout=5) == "image" and new_curve.result(timeout=5) == "new"
    with pytest.raises(Superseded):
        old_curve.result(timeout=5)
    assert log == ["old0", "render", "new0", "new1", "new2"]
    w.close()


def test_http_requests_supersede_while_rendering(tmp_path):
    renderer = toy_renderer()
    render = renderer.render

    def slow_render(p):
        time.sleep(0.3)
        return render(p)

    renderer.render = slow_render
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=renderer)

    async def burst():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            async def get(seed, delay):
                await asyncio.sleep(delay)
                return (await c.get("/api/render", params={"seed": seed, "cls": 0})).json()
            # seed 0 gets 0.1 s to start rendering (a loaded CI machine can take more than 0.02 s), then 1-4
            return await asyncio.gather(*(get(s, 0.1 + 0.02 * s if s else 0) for s in range(5)))

    t0 = time.perf_counter()
    out = asyncio.run(burst())
    assert time.perf_counter() - t0 < 1.5  # 2 renders ran, not 5
    assert out[0]["params"]["seed"] == 0 and out[-1]["params"]["seed"] == 4
    assert all(o.get("superseded") for o in out[1:-1])
    app.state.worker.close()


def test_golden_network_loaded_from_the_page(tmp_path):
    """A golden network picked from the data folder renders the reference images (plain and class blend)."""
    from gan_fixtures import golden, write_native

    from synthhist.images import to_uint8

    write_native("g32_cond2", tmp_path / "g32", tile_px=32, tile_um=64.0)
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=Renderer("cpu"))
    arrays, _ = golden("g32_cond2")
    with TestClient(app) as c:
        found = c.get("/api/files").json()
        assert found["networks"] == [str(tmp_path / "g32")]
        info = c.post("/api/load", json={"network": "g32"}).json()
        net = info["network"]
        assert (net["resolution"], net["c_dim"], net["class_names"], net["tile_px"], net["tile_um"]) == \
            (32, 2, ["classA", "classB"], 32, 64.0)
        expected = to_uint8(torch.from_numpy(arrays["out/img_psi1.0_cutNone_noiseconst"])).numpy()
        for i, seed in enumerate(arrays["in/seeds"]):
            cls = int(arrays["in/c"][i].argmax())
            img = decode(c.get("/api/render", params={"seed": int(seed), "cls": cls}).json()["image"])
            assert np.abs(img.astype(int) - expected[i]).max() <= 1
        blend = to_uint8(torch.from_numpy(arrays["out/blend_img"].reshape(-1, 3, 32, 32))).numpy().reshape(4, 4, 32, 32, 3)
        for k, t in enumerate(arrays["in/blend_t"]):
            r = c.get("/api/render", params={"seed": int(arrays["in/seeds"][1]), "mode": "blend", "cls": 0, "end": 1,
                                             "t": float(t)}).json()
            assert np.abs(decode(r["image"]).astype(int) - blend[k, 1]).max() <= 1


def test_cli_off_loopback_generates_and_requires_a_token(tmp_path):
    """workbench.py --host 0.0.0.0 warns, prints a URL with a generated token, refuses requests without it; demo models by default."""
    import subprocess
    import sys

    from testkit import ROOT

    proc = subprocess.Popen([sys.executable, str(ROOT / "workbench.py"), "--host", "0.0.0.0", "--port", "0",
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ", 1)[1].strip()
        base, token = url.split("/?token=")
        assert len(token) >= 24
        assert httpx.get(base + "/api/info").status_code == 401
        assert httpx.get(url).status_code == 200
        info = httpx.get(base + "/api/info", headers={"X-Workbench-Token": token}).json()
        assert info["network"]["source"] == "demo" and info["classifier"]["source"] == "demo"  # the defaults
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "WARNING: listening on 0.0.0.0" in err and "Using the bundled demo network (--network demo)" in err
