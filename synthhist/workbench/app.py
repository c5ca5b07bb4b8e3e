"""The workbench web API and page: a FastAPI app over one render thread (create_app)."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from synthhist.errors import UserError
from synthhist.workbench.files import AllowedFolders
from synthhist.workbench.params import CurveParams, ImageParams, LoadRequest
from synthhist.workbench.renderer import Renderer
from synthhist.workbench.worker import LatestWinsWorker, Superseded

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "synthhist_workbench_token"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


@dataclass
class WorkbenchConfig:
    """How the app runs: allowed folders, access token, device, and what to load at start."""

    data_dirs: list[Path] = field(default_factory=lambda: [Path.cwd()])
    token: str | None = None  # required on every request when set
    allowed_hosts: list[str] | None = None  # Host headers accepted (None: any); loopback names when bound there
    device: str | None = None
    network: str | None = None
    classifier: str | None = None
    timeout_s: float = 600.0  # a request waiting longer for its render gets 503


def _given_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return (request.headers.get("x-workbench-token") or (auth[7:] if auth.lower().startswith("bearer ") else None)
            or request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE))


def create_app(config: WorkbenchConfig, renderer: Renderer | None = None) -> FastAPI:
    """Build the app; loads config.network/classifier first (UserError if they fail)."""
    folders = AllowedFolders(config.data_dirs)
    renderer = renderer or Renderer(config.device)
    worker = LatestWinsWorker(("load", "render", "curve"))
    if config.network or config.classifier:
        try:
            worker.submit("load", lambda: renderer.load(config.network, config.classifier)).result()
        except BaseException:
            worker.close()
            raise

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        worker.close()

    app = FastAPI(title="synthetic-histology workbench", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.renderer, app.state.worker, app.state.folders = renderer, worker, folders

    async def run(lane: str, fn):
        """Run fn in the render thread; a newer request in the same lane supersedes this one while it waits."""
        fut = worker.submit(lane, fn)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), config.timeout_s)
        except Superseded:
            return {"superseded": True}
        except asyncio.TimeoutError:
            raise HTTPException(503, f"the render took longer than {config.timeout_s:g} s") from None

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    if config.token:
        @app.middleware("http")
        async def require_token(request: Request, call_next):
            given = _given_token(request)
            if not given or not secrets.compare_digest(given.encode(), config.token.encode()):
                return JSONResponse({"detail": "missing or wrong token: open the URL that workbench.py printed"},
                                    status_code=401)
            response = await call_next(request)
            if request.cookies.get(TOKEN_COOKIE) != config.token:  # lets the page's <script>/<img> loads through
                response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="strict")
            return response

    if config.allowed_hosts is not None:  # blocks DNS-rebinding pages from reaching a loopback server
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.allowed_hosts)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    async def info():
        """Loaded network and classifier, device, whether the render thread is busy."""
        return {**renderer.info(), "busy": worker.busy()}

    @app.get("/api/files")
    async def files():
        """Networks and classifiers found under the allowed folders."""
        found = await asyncio.to_thread(folders.candidates)
        return {"roots": [str(r) for r in folders.roots], **found}

    @app.post("/api/load")
    async def load(req: LoadRequest):
        """Load a network and/or classifier from the allowed folders."""
        if req.network is None and req.classifier is None:
            raise UserError("nothing to load: give a network and/or a classifier")
        net = str(folders.resolve(req.network)) if req.network else None
        clf = str(folders.resolve(req.classifier)) if req.classifier else None

        def job():
            try:
                return renderer.load(net, clf)
            except UserError:
                raise
            except Exception as e:  # a broken file must not surface as a 500
                raise UserError(f"could not load {net or clf}: {type(e).__name__}: {e}") from e

        return await run("load", job)

    @app.get("/api/render")
    async def render(p: Annotated[ImageParams, Query()]):
        """The image for p, the classifier's input and its prediction."""
        return await run("render", lambda: renderer.render(p))

    @app.get("/api/curve")
    async def curve(p: Annotated[CurveParams, Query()]):
        """The classifier's predictions along the class-blend slider."""
        return await run("curve", lambda: renderer.curve(p))

    return app
