"""Request hygiene for the workbench, as one ASGI middleware (RequestGuard).

- Host: when bound to loopback only loopback names are accepted (blocks DNS-rebinding pages);
- same origin: a request whose Origin (or, for a POST, Referer) names another site is refused (403);
- POST bodies must be JSON (415) and small (413; the tile upload of /api/project up to 28 MiB); bodies are never
  echoed back; a DELETE may have no body;
- every response forbids framing and loads from anywhere but the server itself (CSP).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

MAX_BODY = 64 * 1024  # bytes: the API takes only small JSON bodies
MAX_UPLOAD_BODY = 28 << 20  # bytes: POST /api/project carries a real tile as a base64 data URL (20 MiB image)
UPLOAD_PATHS = ("/api/project",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                 b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def host_name(host: str) -> str:
    """'127.0.0.2:8000' -> '127.0.0.2', '[::1]:8000' -> '::1', 'Example.org' -> 'example.org'."""
    try:
        return (urlsplit("//" + host).hostname or "").lower()
    except ValueError:  # e.g. an unclosed '['
        return ""


class RequestGuard:
    """ASGI middleware enforcing the rules above; allowed_hosts None accepts any Host header."""

    def __init__(self, app, allowed_hosts: list[str] | None = None, max_body: int = MAX_BODY):
        self.app, self.max_body = app, max_body
        self.allowed_hosts = None if allowed_hosts is None else {host_name(h) or h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]

        async def send_secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        host = headers.get("host", "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return await _refuse(send_secured, 400, "invalid Host header: open the URL that workbench.py printed")
        if not _same_origin(headers, host, method):
            return await _refuse(send_secured, 403, "cross-site request refused")
        if method in SAFE_METHODS or (method == "DELETE" and _bodyless(headers)):
            return await self.app(scope, receive, send_secured)
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return await _refuse(send_secured, 415, "the request body must be JSON (Content-Type: application/json)")
        max_body = MAX_UPLOAD_BODY if scope["path"] in UPLOAD_PATHS else self.max_body
        if int(headers.get("content-length") or 0) > max_body:
            return await _refuse(send_secured, 413, f"request body larger than {max_body} bytes")
        body, more = b"", True
        while more:  # read the whole (small) body here, so a chunked upload cannot exceed the limit either
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > max_body:
                return await _refuse(send_secured, 413, f"request body larger than {max_body} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send_secured)


def _bodyless(headers: dict[str, str]) -> bool:
    """True for a request without a body (a DELETE of a job: no Content-Type needed; browsers preflight it)."""
    return int(headers.get("content-length") or 0) == 0 and "transfer-encoding" not in headers


def _same_origin(headers: dict[str, str], host: str, method: str) -> bool:
    """False when Origin (or a state-changing request's Referer) names a site other than this server."""
    origin = headers.get("origin")
    if origin is None and method not in SAFE_METHODS:
        origin = headers.get("referer")
    if origin is None:
        return True  # not from a browser page (curl, scripts): nothing to protect against
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
