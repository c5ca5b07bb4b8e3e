"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1 (file listing, HEAD/GET resolve) for offline tests.

Use: `with FakeHub({"owner/repo": {"network.json": b"...", ...}}) as hub:` then point the client at it with
HF_ENDPOINT=hub.url (and HF_HOME=<tmp>, HF_HUB_OFFLINE=0) in a subprocess. `hub.requests` logs the paths.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serve repos {repo_id: {path: bytes}} the way the Hub's resolve and tree APIs do."""

    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = repos
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, head: bool):
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and (len(parts) == 4 or parts[4:5] in (["tree"], ["revision"])):
                    repo = "/".join(parts[2:4])
                    if repo not in hub.repos:
                        return self._send(404, b'{"error":"Repository not found"}',
                                          {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"}, head)
                    files = hub.repos[repo]
                    if parts[4:5] == ["tree"]:
                        body = [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                                for p, b in sorted(files.items())]
                    else:
                        body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": p} for p in sorted(files)]}
                    return self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                    if repo not in hub.repos:
                        return self._send(404, b"", {"X-Error-Code": "RepoNotFound"}, head)
                    if filename not in hub.repos[repo]:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
                    body = hub.repos[repo][filename]
                    etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                    return self._send(200, body, {"X-Repo-Commit": COMMIT, "ETag": etag,
                                                  "Content-Type": "application/octet-stream"}, head)
                return self._send(404, b"", {}, head)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def each_in_subprocess(refs: list[str], expr: str, env: dict, imports: str) -> dict[str, str]:
    """Evaluate expr (using `ref`) for each reference in one fresh process with env (the Hub client reads its
    settings at import); {ref: str(result) or 'ERR <UserError message>'}."""
    code = (f"import sys\nfrom synthhist.errors import UserError\n{imports}\nfor ref in sys.argv[1:]:\n"
            f"    try:\n        print(ref, '=', {expr})\n    except UserError as e:\n        print(ref, '= ERR', e)\n")
    proc = subprocess.run([sys.executable, "-c", code, *refs], cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" = ", 1) for line in proc.stdout.splitlines())


def repo_from_folder(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """All files of a folder as {prefix + relative path: bytes}."""
    return {prefix + str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
