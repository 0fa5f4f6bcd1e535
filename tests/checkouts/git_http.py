"""A forge's git endpoint on loopback: git's smart HTTP protocol behind a token, as GitHub and
GitLab serve ``https://host/owner/repo.git`` (test double; plain code).

Every request must carry HTTP Basic credentials whose password is the token (any user
name, as both forges accept for a token); otherwise it is answered 401 with a
``WWW-Authenticate: Basic`` challenge, which is what makes git ask its credential helper.
An authenticated request is handed to ``git http-backend``, git's own CGI server
(git-http-backend(1)), with the environment the CGI specification gives it; partial clone
filters work when the bare repository sets ``uploadpack.allowFilter``. Every
Authorization header seen is kept (``seen``), so a test can tell what git sent.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BACKEND = ["git", "http-backend"]


class GitHTTP(ThreadingHTTPServer):
    """Serves the bare repositories under ``root`` at ``http://127.0.0.1:PORT/<path>``."""

    daemon_threads = True

    def __init__(self, root: Path, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.token = token
        self.seen: list[str] = []  # every Authorization header, as sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def allows(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return password == self.token


class _Handler(BaseHTTPRequestHandler):
    server: GitHTTP

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read what git says

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, body: bytes) -> None:
        header = self.headers.get("Authorization")
        if header:
            self.server.seen.append(header)
        if not self.server.allows(header):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        parts = urlsplit(self.path)
        env = {
            "GIT_PROJECT_ROOT": str(self.server.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command, "REMOTE_USER": "token", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "PATH": "/usr/bin:/bin:/usr/local/bin",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run(BACKEND, input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def serving(root: Path, token: str) -> Iterator[GitHTTP]:
    """A GitHTTP server over ``root`` for the ``with`` block."""
    server = GitHTTP(root, token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
