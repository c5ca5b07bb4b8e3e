"""The Inception-v3 of the reference FID implementation (TensorFlow 2015-12-05 weights): download, cache, verify.

The network is torch-fidelity's FeatureExtractorInceptionV3 (https://github.com/toshas/torch-fidelity), a
port that reproduces the TensorFlow reference features, including its in-graph bilinear resize to 299 px.
Its weights are a plain state dict; they are downloaded once into the cache, checked against their sha256,
and read with torch.load(weights_only=True), so the file cannot run code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import logging
import os
import sys
import types
from pathlib import Path

import torch

from synthhist.errors import UserError

log = logging.getLogger("synthhist")

URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
SHA256 = "6726825d"  # sha256 prefix in the file name (torch.hub's convention); a full digest may be given instead


def cache_dir() -> Path:
    """$SYNTHHIST_CACHE/metrics, else ~/.cache/synthhist/metrics."""
    root = os.environ.get("SYNTHHIST_CACHE") or Path.home() / ".cache" / "synthhist"
    return Path(root).expanduser() / "metrics"


def weights_source() -> tuple[str, str]:
    """(url, sha256 or sha256 prefix) of the weights; $SYNTHHIST_INCEPTION_URL / _SHA256 override them."""
    return os.environ.get("SYNTHHIST_INCEPTION_URL", URL), os.environ.get("SYNTHHIST_INCEPTION_SHA256", SHA256)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_weights(url: str | None = None, sha256: str | None = None, cache: Path | None = None) -> Path:
    """Path of the verified weights in the cache, downloading them first if missing; UserError offline."""
    from synthhist.wsi.download import DownloadError, download

    default_url, default_sha = weights_source()
    url, sha256, cache = url or default_url, (sha256 or default_sha).lower(), cache or cache_dir()
    dest = cache / url.rsplit("/", 1)[-1]
    if not dest.is_file():
        log.info(f"downloading the Inception-v3 weights {url} -> {dest}")
        try:
            download(url, dest, retries=2, backoff=0.5, timeout=30)
        except DownloadError as e:
            raise UserError(f"cannot download the Inception-v3 weights ({e}): download {url} and put it at "
                            f"{dest}") from None
    got = sha256_of(dest)
    if not got.startswith(sha256):
        bad = dest.with_name(dest.name + ".bad")
        os.replace(dest, bad)
        raise UserError(f"{dest}: sha256 {got[:16]}... does not match the expected {sha256[:16]} (moved to {bad}); "
                        f"download {url} again and put it at {dest}")
    return dest


def _fidelity_inception():
    """torch-fidelity's FeatureExtractorInceptionV3 class.

    torch_fidelity/__init__ imports its CLIP extractor, which needs torchvision (which does not import beside
    every torch); the Inception module itself is pure torch, so when the package import fails the module is
    imported from the package folder without running the package's __init__.
    """
    name = "torch_fidelity.feature_extractor_inceptionv3"
    try:
        return importlib.import_module(name).FeatureExtractorInceptionV3
    except ModuleNotFoundError as e:
        spec = importlib.util.find_spec("torch_fidelity") if e.name != "torch_fidelity" else None
        if spec is None or e.name != "torchvision":
            raise UserError("the Inception metrics need torch-fidelity: pip install --no-deps torch-fidelity") from None
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["torch_fidelity"] = pkg
    return importlib.import_module(name).FeatureExtractorInceptionV3


def _state_bytes(state: dict) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return buf


def inception_v3(weights: Path | None, device: torch.device) -> torch.nn.Module:
    """The pool3 (2048-d) Inception feature network from verified weights; weights None = random init (bench)."""
    cls = _fidelity_inception()

    class InceptionV3(cls):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if state_dict:  # an empty state dict keeps PyTorch's random init
                return super().load_state_dict(state_dict, strict, assign)

    state = {}
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net = InceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=_state_bytes(state))
        except Exception as e:  # a wrong or damaged file: one line, never a traceback
            raise UserError(f"{weights}: not the Inception-v3 weights ({str(e).splitlines()[0][:150]})") from None
    else:
        net = InceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=_state_bytes(state))
    return net.to(device)
