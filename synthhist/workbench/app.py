"""The workbench web API and page: a FastAPI app over one render thread (create_app)."""

from __future__ import annotations

import asyncio
import json
import secrets
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from synthhist.errors import UserError
from synthhist.workbench import sandbox
from synthhist.workbench.files import AllowedFolders
from synthhist.workbench.guard import RequestGuard
from synthhist.workbench.params import CurveParams, ImageParams, LoadRequest
from synthhist.workbench.projection import projection_router
from synthhist.workbench.renderer import Renderer
from synthhist.workbench.teach import teach_router
from synthhist.workbench.worker import LatestWinsWorker, Superseded

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "synthhist_workbench_token"  # + "_<port>": one cookie per server on a host
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]


@dataclass
class WorkbenchConfig:
    """How the app runs: allowed folders, access token, device, and what to load at start."""

    data_dirs: list[Path] = field(default_factory=lambda: [Path.cwd()])
    token: str | None = None  # required on every request when set
    allowed_hosts: list[str] | None = None  # Host headers accepted (None: any); loopback names when bound there
    device: str | None = None
    network: str | None = None
    classifier: str | None = None
    gan_um: float | None = None  # the GAN's tile size in microns when its metadata lacks it
    timeout_s: float = 600.0  # a request waiting longer for its render gets 503
    results_dir: Path = field(default_factory=lambda: Path.cwd() / "teach-results")  # quiz answers (teach.py)
    real: Path | None = None  # folder of real tiles for 'real or synthetic' quizzes


def _cookie_name(request: Request) -> str:
    return f"{TOKEN_COOKIE}_{request.scope['server'][1] if request.scope.get('server') else 0}"


def _given_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return (request.headers.get("x-workbench-token") or (auth[7:] if auth.lower().startswith("bearer ") else None)
            or request.query_params.get("token") or request.cookies.get(_cookie_name(request)))


def _one_line(exc: RequestValidationError) -> str:
    """Pydantic errors as one line, naming the parameter and the rule, never the value sent."""
    return "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}"
                     for e in exc.errors()[:5])


def create_app(config: WorkbenchConfig, renderer: Renderer | None = None) -> FastAPI:
    """Build the app; loads config.network/classifier first (UserError if they fail)."""
    folders = AllowedFolders(config.data_dirs)
    renderer = renderer or Renderer(config.device, gan_um=config.gan_um)
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

    async def stream(lane: str, fn):
        """Run fn like run(), answering one JSON line per stage: what it yields (previews), then its result."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        fut = worker.submit(lane, fn, progress=lambda item: loop.call_soon_threadsafe(events.put_nowait, item))
        fut.add_done_callback(lambda f: loop.call_soon_threadsafe(events.put_nowait, f))

        async def next_event() -> tuple[dict, bool]:
            """(event, last): a yielded preview, or the job's result (raises its UserError) as the last one."""
            try:
                item = await asyncio.wait_for(events.get(), config.timeout_s)
            except asyncio.TimeoutError:
                raise HTTPException(503, f"the render took longer than {config.timeout_s:g} s") from None
            if not isinstance(item, Future):
                return item, False
            try:
                return item.result(), True
            except Superseded:
                return {"superseded": True}, True

        first = await next_event()  # a job failing before its first stage answers a plain 400

        async def lines():
            event, last = first
            yield json.dumps(event).encode() + b"\n"
            while not last:
                try:
                    event, last = await next_event()
                except (UserError, HTTPException) as e:
                    event, last = {"error": str(e) if isinstance(e, UserError) else e.detail}, True
                yield json.dumps(event).encode() + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    if config.token:
        @app.middleware("http")
        async def require_token(request: Request, call_next):
            given = _given_token(request)
            if not given or not secrets.compare_digest(given.encode(), config.token.encode()):
                return JSONResponse({"detail": "missing or wrong token: open the URL that workbench.py printed"},
                                    status_code=401)
            if request.url.path == "/" and "token" in request.query_params and \
                    "text/html" in request.headers.get("accept", ""):  # a browser: on to the URL without the token
                response = RedirectResponse("/", status_code=303)
            else:
                response = await call_next(request)
            if request.url.path == "/" or request.cookies.get(_cookie_name(request)) != config.token:
                response.set_cookie(_cookie_name(request), config.token, httponly=True, samesite="strict")
            return response

    app.add_middleware(RequestGuard, allowed_hosts=config.allowed_hosts)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(teach_router(renderer, folders, config.results_dir, config.real))
    app.include_router(projection_router(renderer, folders))

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
        net = folders.resolve(req.network) if req.network else None
        clf = folders.resolve(req.classifier) if req.classifier else None

        def job():  # each file is loaded in a child process; the pair is swapped in only when both loaded
            try:
                loaded_net = sandbox.load_network(net, renderer.device) if net else None
                loaded_clf = sandbox.load_classifier(clf) if clf else None
            except UserError:
                raise
            except Exception as e:  # building from the child's data failed: still one line, not a 500
                raise UserError(f"could not load {net or clf}: {type(e).__name__}: {e}") from e
            return renderer.use(loaded_net, loaded_clf)

        return await run("load", job)

    @app.get("/api/render")
    async def render(p: Annotated[ImageParams, Query()]):
        """The image for p, the classifier's input and its prediction."""
        return await run("render", lambda: renderer.render(p))

    @app.get("/api/render/stream")
    async def render_stream(p: Annotated[ImageParams, Query()]):
        """As /api/render, as JSON lines: the preview (stage 'preview', low resolution) first, then the result."""
        return await stream("render", lambda: renderer.render(p))

    @app.get("/api/curve")
    async def curve(p: Annotated[CurveParams, Query()]):
        """The classifier's predictions along the class-blend slider."""
        return await run("curve", lambda: renderer.curve(p))

    @app.get("/api/curve/stream")
    async def curve_stream(p: Annotated[CurveParams, Query()]):
        """As /api/curve, as JSON lines: the curve from preview images first, then the refined one."""
        return await stream("curve", lambda: renderer.curve(p))

    return app
