"""A fake GDC API for tests: POST/GET /files (file_name filter), GET /data/<uuid> and /static/<name> with
HTTP Range; can drop a connection mid-file, report a wrong MD5, answer 500, or ignore Range."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeFile:
    name: str
    data: bytes
    file_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    md5: str = ""              # reported MD5 ('' = the true one)
    drops: int = 0             # how many next data requests are cut off half-way
    errors: int = 0            # how many next data requests answer 500
    gone: bool = False         # listed by /files, but /data answers 404


class FakeGdc:
    """Serve files on 127.0.0.1:<random port>; `requests` logs (method, path, Range header)."""

    def __init__(self):
        self.files: dict[str, FakeFile] = {}
        self.static: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.ignore_range = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def add(self, name: str, data: bytes, **kwargs) -> FakeFile:
        f = FakeFile(name, data, **kwargs)
        self.files[f.file_id] = f
        return f

    def data_requests(self, f: FakeFile) -> list[str | None]:
        """Range headers of the data requests for f, in order."""
        return [r for m, p, r in self.requests if p == f"/data/{f.file_id}"]

    def __enter__(self) -> "FakeGdc":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _hits(self, names: list[str]) -> dict:
        hits = [{"id": f.file_id, "file_id": f.file_id, "file_name": f.name, "file_size": len(f.data),
                 "md5sum": f.md5 or hashlib.md5(f.data).hexdigest()} for f in self.files.values() if f.name in names]
        return {"data": {"hits": hits, "pagination": {"count": len(hits), "total": len(hits)}}, "warnings": {}}

    def _handler(self):
        gdc = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, obj):
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                gdc.requests.append(("POST", self.path, None))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if urlparse(self.path).path != "/files":
                    return self.send_error(404)
                self._json(gdc._hits(body["filters"]["content"]["value"]))

            def do_GET(self):
                url = urlparse(self.path)
                gdc.requests.append(("GET", url.path, self.headers.get("Range")))
                if url.path == "/files":
                    filters = json.loads(parse_qs(url.query)["filters"][0])
                    return self._json(gdc._hits(filters["content"]["value"]))
                f, data = None, None
                if url.path.startswith("/data/") and url.path[6:] in gdc.files:
                    f = gdc.files[url.path[6:]]
                    data = f.data
                elif url.path.startswith("/static/") and url.path[8:] in gdc.static:
                    data = gdc.static[url.path[8:]]
                if data is None or (f is not None and f.gone):
                    return self.send_error(404)
                if f is not None and f.errors:
                    f.errors -= 1
                    return self.send_error(500)
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not gdc.ignore_range:
                    start, status = int(rng.split("=")[1].split("-")[0]), 206
                    if start >= len(data):
                        return self.send_error(416)
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if f is not None and f.drops:
                    f.drops -= 1
                    self.wfile.write(data[start:start + (len(data) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        return Handler
