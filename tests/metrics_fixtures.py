"""A tiny stand-in for the Inception-v3 feature network (same constructor and output as torch-fidelity's), its
weights file, a fake weights server on 127.0.0.1, and `run_with_standin` to run calc_metrics.py with it."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


class TinyInception(torch.nn.Module):
    """uint8 [N, 3, H, W] -> ([N, 2048],): 4x4 average pool of the image in [-1, 1], then a fixed linear map."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__()
        self.inputs: list[torch.Tensor] = []
        self.fc = torch.nn.Linear(48, 2048)
        self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=False))

    def forward(self, x):
        assert x.dtype == torch.uint8
        self.inputs.append(x)
        y = F.adaptive_avg_pool2d((x.float() - 128) / 128, 4).flatten(1)
        return (self.fc(y),)


def standin_weights(seed: int = 0) -> bytes:
    """Bytes of a stand-in weights file (a plain state dict)."""
    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save({f"fc.{k}": v for k, v in torch.nn.Linear(48, 2048).state_dict().items()}, buf)
    return buf.getvalue()


def patch_inception() -> None:
    """Make synthhist.metrics.inception build TinyInception instead of torch-fidelity's network."""
    import synthhist.metrics.inception as inception

    inception._fidelity_inception = lambda: TinyInception


class WeightsServer:
    """Serve {name: bytes} over HTTP on 127.0.0.1; `requests` logs the paths asked for."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                srv.requests.append(self.path)
                body = srv.files.get(self.path.lstrip("/"))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "WeightsServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def standin_env(cache: Path, url: str, weights: bytes) -> dict[str, str]:
    """Environment pointing the metrics at a stand-in weights URL and its sha256, with its own cache."""
    return dict(os.environ, SYNTHHIST_CACHE=str(cache), SYNTHHIST_INCEPTION_URL=url,
                SYNTHHIST_INCEPTION_SHA256=hashlib.sha256(weights).hexdigest(), PYTHONUNBUFFERED="1",
                TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def run_calc_metrics(*args, env: dict[str, str], standin: bool = False, timeout: int = 600,
                     script: str = "calc_metrics.py") -> subprocess.CompletedProcess:
    """Run calc_metrics.py (or another script) as a subprocess (with TinyInception patched in when standin)."""
    code = ("import sys, runpy; sys.path.insert(0, sys.argv[1]); "
            + ("import metrics_fixtures; metrics_fixtures.patch_inception(); " if standin else "")
            + "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", code, str(ROOT / "tests"), str(ROOT / script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
