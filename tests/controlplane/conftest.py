"""Fixtures for the control-plane driver tests: recorded outputs, a scripted loopback HTTP
server, and a stand-in ``astro`` executable for process-control tests."""

from __future__ import annotations

import json
import socket
import struct
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

RECORDED = Path(__file__).parent / "recorded"


@pytest.fixture
def recorded() -> Path:
    """The directory of recorded real-shape outputs."""
    return RECORDED


# A step answers one request: ("json", status, body), ("raw", status, text), either with
# a dict of extra headers as a fourth item, ("reset",) to drop the connection with a TCP
# RST, ("hang", seconds) to say nothing, or a callable (query) -> step. The last step of a
# script repeats forever.
Step = tuple | Callable[[dict[str, list[str]]], tuple]


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    client_port: int
    method: str = "GET"
    body: bytes = b""


@dataclass
class ScriptedServer:
    """A real HTTP/1.1 server on 127.0.0.1 that answers each path from a script."""

    scripts: dict[str, list[Step]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def script(self, path: str, *steps: Step) -> None:
        """Answer requests for ``path`` with ``steps`` in order, repeating the last."""
        self.scripts[path] = list(steps)

    def api_url(self, deployment: str = "dep-1", version: int = 1) -> str:
        """A schemeless Airflow API URL as Astro gives it."""
        return f"127.0.0.1:{self.port}/d/{deployment}/api/v{version}"

    def requests_to(self, path: str) -> list[Seen]:
        """Every request received for ``path``."""
        return [s for s in self.seen if s.path == path]

    def _next(self, path: str) -> Step:
        with self.lock:
            steps = self.scripts.get(path)
            if not steps:
                return ("json", 404, {"detail": "Not Found"})
            return steps.pop(0) if len(steps) > 1 else steps[0]


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length) if length else b""
            with server.lock:
                server.seen.append(
                    Seen(parts.path, query, dict(self.headers), self.client_address[1],
                         self.command, sent)
                )
            step = server._next(parts.path)
            if callable(step):
                step = step(query)
            kind = step[0]
            if kind == "reset":
                # SO_LINGER 0 turns close() into a TCP RST: "connection reset by peer".
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            if kind == "hang":
                server.release.wait(step[1])
                self.close_connection = True
                return
            status, body = step[1], step[2]
            data = (json.dumps(body) if kind == "json" else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if kind == "json" else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (step[3] if len(step) > 3 else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PATCH = do_GET

    return Handler


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on an ephemeral loopback port."""
    state = ScriptedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_astro(tmp_path: Path) -> Callable[[str], Path]:
    """Write an executable stand-in for ``astro`` whose body is the given Python code.

    Used only where the real CLI cannot run (no Astro to talk to) and the behaviour under
    test is process control: argv, cwd, stdin, env, time-outs, process groups.
    """

    def make(body: str, name: str = "astro") -> Path:
        path = tmp_path / "bin" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        path.chmod(0o755)
        return path

    return make

