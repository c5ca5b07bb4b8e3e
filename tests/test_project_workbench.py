"""Workbench projection routes (synthhist.workbench.projection) in-process on a golden GAN."""

import base64
import io
import time

import pytest
import torch
from fastapi.testclient import TestClient
from gan_fixtures import golden_generator
from PIL import Image

from synthhist.gan.checkpoint import GanNetwork
from synthhist.gan.latent import onehot, z_from_seeds
from synthhist.images import to_uint8
from synthhist.workbench.app import LOOPBACK_HOSTS, WorkbenchConfig, create_app
from synthhist.workbench.projection import projection_router
from synthhist.workbench.renderer import Renderer


def png_url(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.slow
def test_project_route_progress_cancel_counterfactual(tmp_path):
    G = golden_generator("g32_cond2")
    r = Renderer("cpu")
    r.net = GanNetwork(G, tile_px=32, tile_um=64.0)
    app = create_app(WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=LOOPBACK_HOSTS), renderer=r)
    app.include_router(projection_router(app.state.renderer, app.state.folders))
    with torch.no_grad():
        img = to_uint8(G(z_from_seeds([7], G.z_dim), onehot(1, 2)))[0].numpy()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        job = c.post("/api/project", json={"image": png_url(img), "cls": 1, "steps": 8}).json()["id"]
        for _ in range(600):
            s = c.get(f"/api/project/{job}").json()
            if s["state"] != "running":
                break
            time.sleep(0.1)
        assert s["state"] == "done" and s["step"] == 8 and s["recon"].startswith("data:image/png")
        cf = c.get(f"/api/project/{job}/counterfactual", params={"end": 0, "t": 1}).json()
        assert cf["image"].startswith("data:image/png") and cf["prediction"] is None
        assert c.get(f"/api/project/{job}/counterfactual", params={"end": 5}).status_code == 400
        long = c.post("/api/project", json={"image": png_url(img), "cls": 0, "steps": 5000}).json()["id"]
        assert c.delete(f"/api/project/{long}").json() == {"cancelled": True}
        for _ in range(600):
            if c.get(f"/api/project/{long}").json()["state"] != "running":
                break
            time.sleep(0.1)
        assert c.get(f"/api/project/{long}").json()["state"] == "cancelled"
        bad = c.post("/api/project", json={"image": "data:image/png;base64,AAAA"})
        assert bad.status_code == 400 and "not an image" in bad.json()["detail"]
        assert c.get("/api/project/99").status_code == 404
