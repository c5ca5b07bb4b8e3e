"""Workbench routes for real tiles: project one (upload or TFRecord tile) with progress and cancel, then show
real | reconstruction | counterfactual at t with the classifier's prediction (synthhist.explain.counterfactual).

    POST   /api/project             {image: PNG data URL | tfrecord: path, index, cls?, steps, space} -> {id}
    GET    /api/project/{id}        {step, steps, loss, state: running|done|cancelled|error, error, real, recon}
    DELETE /api/project/{id}        cancel
    GET    /api/project/{id}/counterfactual?end=K&t=0.5   {image, prediction}
"""

from __future__ import annotations

import base64
import copy
import itertools
import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from synthhist.errors import UserError
from synthhist.explain.counterfactual import class_direction, counterfactual_ws
from synthhist.explain.losses import default_loss, make_distance
from synthhist.explain.projection import best_class, check_class, noise_buffers, project, uint8_to_gan
from synthhist.explain.target import decode_rgb, load_target, to_gan_tile
from synthhist.images import to_uint8
from synthhist.workbench.renderer import png_data_url

MAX_UPLOAD = 20 << 20


class ProjectRequest(BaseModel):
    image: str | None = Field(None, max_length=MAX_UPLOAD * 4 // 3 + 64)
    tfrecord: str | None = None
    index: int | None = Field(None, ge=0)
    cls: int | None = Field(None, ge=0)
    steps: int = Field(300, ge=1, le=5000)
    space: str = Field("w", pattern="^(w|w\\+)$")


@dataclass
class Job:
    steps: int
    real: np.ndarray
    cls: int | None
    step: int = 0
    loss: float | None = None
    state: str = "running"
    error: str | None = None
    ws: torch.Tensor | None = None
    noise: dict = field(default_factory=dict)
    G: object = None
    cancel: threading.Event = field(default_factory=threading.Event)


def _run(job: Job, G, target: torch.Tensor, dist, space: str) -> None:
    try:
        for i, d, ws, noise in project(G, target, dist, job.cls, space=space, steps=job.steps):
            job.step, job.loss, job.ws, job.noise = i + 1, d, ws, noise
            if job.cancel.is_set():
                job.state = "cancelled"
                return
        job.G = copy.deepcopy(G)  # the counterfactual renders with the projected noise, beside the render thread
        with torch.no_grad():
            for k, b in noise_buffers(job.G).items():
                b.copy_(job.noise[k])
        job.state = "done"
    except Exception as e:  # shown on the page
        job.state, job.error = "error", str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"


def projection_router(renderer, folders) -> APIRouter:
    """The /api/project routes on the workbench's loaded network and classifier."""
    router = APIRouter()
    jobs: dict[str, Job] = {}
    ids = itertools.count()

    def get(job_id: str) -> Job:
        if job_id not in jobs:
            raise HTTPException(404, f"no projection {job_id}")
        return jobs[job_id]

    @router.post("/api/project")
    def start(req: ProjectRequest):
        """Start projecting a tile; poll GET /api/project/{id}."""
        G = renderer._need_net()
        net = renderer.net
        R = int(G.img_resolution)
        if req.image is not None:
            data = base64.b64decode(req.image.split(",", 1)[-1], validate=False)
            real = to_gan_tile(decode_rgb(data, "the uploaded file"), R, net.tile_um)
        elif req.tfrecord is not None:
            real = load_target(R, net.tile_um, tfrecord=folders.resolve(req.tfrecord), index=req.index)
        else:
            raise UserError("give an image or a TFRecord and index")
        target = uint8_to_gan(real, renderer.device)
        dist = make_distance(default_loss(), target, net.D)
        cls = req.cls if req.cls is not None or G.c_dim == 0 else best_class(G, dist)
        check_class(G, cls)
        for k in [k for k, j in jobs.items() if j.state != "running"][:-4]:  # keep the last few
            del jobs[k]
        job_id = str(next(ids))
        jobs[job_id] = job = Job(req.steps, real, cls)
        threading.Thread(target=_run, args=(job, G, target, dist, req.space), daemon=True, name="projector").start()
        return {"id": job_id, "cls": cls}

    @router.get("/api/project/{job_id}")
    def status(job_id: str):
        """Progress, and the real tile and current reconstruction."""
        job = get(job_id)
        recon = None
        if job.ws is not None and job.state == "done":
            with torch.no_grad():
                recon = png_data_url(to_uint8(job.G.synthesis(job.ws, noise_mode="const"))[0].cpu().numpy())
        return {"step": job.step, "steps": job.steps, "loss": job.loss, "state": job.state, "error": job.error,
                "cls": job.cls, "real": png_data_url(job.real), "recon": recon}

    @router.delete("/api/project/{job_id}")
    def cancel(job_id: str):
        """Stop a running projection."""
        get(job_id).cancel.set()
        return {"cancelled": True}

    @router.get("/api/project/{job_id}/counterfactual")
    def counterfactual(job_id: str, end: int, t: float = 1.0):
        """The projected tile moved toward class `end` by t, and the classifier's prediction."""
        job = get(job_id)
        if job.state != "done":
            raise UserError("the projection has not finished")
        check_class(job.G, end)
        if not 0 <= t <= 1:
            raise UserError("t must be between 0 and 1")
        with torch.no_grad():
            delta = class_direction(job.G, job.cls, end, torch.tensor([t]))
            img = job.G.synthesis(counterfactual_ws(job.ws, delta.to(job.ws.device)), noise_mode="const")
        out = {"image": png_data_url(to_uint8(img)[0].cpu().numpy()), "prediction": None}
        if renderer.clf is not None:
            x = renderer.bridge()(img)
            out["prediction"] = renderer._prediction(np.asarray(renderer.clf.predict(x))[0])
        return out

    return router
