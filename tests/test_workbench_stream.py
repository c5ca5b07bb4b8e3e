"""Workbench progressive rendering over real HTTP: the preview arrives before the final image, a newer request
cancels the old one at a synthesis block boundary, and the curve comes from previews first."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest

from synthhist.workbench.app import WorkbenchConfig, create_app
from synthhist.workbench.renderer import Renderer
from synthhist.workbench.serve import bind
from test_workbench import decode, toy_renderer


@pytest.fixture
def served(tmp_path):
    """(base URL, renderer) of a real uvicorn server on a free port with the golden 32-px network."""
    import uvicorn
    from gan_fixtures import write_native

    write_native("g32_cond2", tmp_path / "g32", tile_px=32, tile_um=64.0)
    renderer = toy_renderer()
    renderer.load(str(tmp_path / "g32"))
    renderer.clf.tile_um = 32.0  # half the GAN's field
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path]), renderer=renderer)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", renderer
    server.should_exit = True
    thread.join(10)


def hold_block(renderer: Renderer, res: int):
    """Make synthesis block `res` wait for the returned gate on its first call; entered is set when it waits."""
    block = getattr(renderer.net.G.synthesis, f"b{res}")
    forward, gate, entered, calls = block.forward, threading.Event(), threading.Event(), []

    def held(*args, **kwargs):
        calls.append(time.perf_counter())
        if len(calls) == 1:
            entered.set()
            assert gate.wait(20), "the gate was never opened"
        return forward(*args, **kwargs)

    block.forward = held
    return gate, entered, calls


def test_preview_arrives_before_the_final_image(served):
    url, renderer = served
    gate, _, _ = hold_block(renderer, 32)  # the last block waits until the client has the preview
    params = {"seed": 3, "cls": 1}
    with httpx.Client(base_url=url, timeout=60) as c:
        with c.stream("GET", "/api/render/stream", params=params) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
            lines = r.iter_lines()
            preview = json.loads(next(lines))
            assert preview["stage"] == "preview" and preview["resolution"] == 8
            assert decode(preview["image"]).shape == (8, 8, 3)
            gate.set()  # only now can the final image be made
            final = json.loads(next(lines))
            assert list(lines) == []
        assert final["stage"] == "final" and final["resolution"] == 32 and final["prediction"]["labels"] == ["a", "b"]
        plain = c.get("/api/render", params=params).json()
    assert plain["image"] == final["image"] and plain["prediction"] == final["prediction"]
    assert decode(final["image"]).shape == (32, 32, 3)


def test_newer_request_cancels_the_old_one_at_a_block_boundary(served):
    url, renderer = served
    gate, entered, calls16 = hold_block(renderer, 16)
    b32_calls = []
    b32 = renderer.net.G.synthesis.b32
    forward32 = b32.forward
    b32.forward = lambda *a, **k: b32_calls.append(1) or forward32(*a, **k)
    out = {}

    def get(name, seed):
        with httpx.Client(base_url=url, timeout=60) as c:
            out[name] = [json.loads(x) for x in c.get("/api/render/stream", params={"seed": seed, "cls": 0}).iter_lines()]

    old = threading.Thread(target=get, args=("old", 1))
    old.start()
    assert entered.wait(20)  # the old request is inside block 16
    new = threading.Thread(target=get, args=("new", 2))
    new.start()
    time.sleep(0.5)  # the new request waits in the render lane
    gate.set()
    old.join(30)
    new.join(30)
    assert out["old"][-1] == {"superseded": True}  # stopped after block 16 ...
    assert len(b32_calls) == 1 and len(calls16) == 2  # ... so block 32 ran only for the new request
    assert out["new"][0]["stage"] == "preview" and out["new"][-1]["params"]["seed"] == 2


def test_curve_from_previews_first_then_refined(served):
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as c:
        events = [json.loads(x) for x in
                  c.get("/api/curve/stream", params={"seed": 5, "cls": 0, "end": 1, "steps": 5}).iter_lines()]
        plain = c.get("/api/curve", params={"seed": 5, "cls": 0, "end": 1, "steps": 5}).json()
        renders = [c.get("/api/render", params={"seed": 5, "mode": "blend", "cls": 0, "end": 1, "t": t}).json()
                   for t in plain["t"]]
    assert [e["stage"] for e in events] == ["preview", "final"] and [e["resolution"] for e in events] == [8, 32]
    assert events[1]["values"] == plain["values"] and events[0]["t"] == plain["t"]
    for i, r in enumerate(renders):  # the refined curve is the full-resolution prediction
        np.testing.assert_allclose([v[i] for v in plain["values"]], r["prediction"]["values"], atol=1e-5)


def test_stream_errors(served):
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.get("/api/render/stream", params={"seed": 1, "cls": 7})
        assert r.status_code == 400 and "out of range" in r.json()["detail"]
        assert c.get("/api/curve/stream", params={"steps": 1}).status_code == 422
