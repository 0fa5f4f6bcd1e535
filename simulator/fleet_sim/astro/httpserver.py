"""HTTP for the simulator: ``http.server`` with one thread per connection, keep-alive.

Requests are answered one at a time (the application holds one lock), so the simulated
state needs no locking of its own; a delayed answer (an ``airflow_hang`` fault) waits
outside the lock, holding only its own connection.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY = 8 * 1024 * 1024


@dataclass
class Request:
    """One parsed request; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body decoded as JSON (``{}`` when empty); ValueError when it is not JSON."""
        if not self.body:
            return {}
        return json.loads(self.body)


@dataclass
class Response:
    """What to send back; ``delay`` (seconds) holds the answer back on its connection."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0


def json_response(
    status: int, payload: object, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(payload).encode(), headers=headers or [])


Handler = Callable[[Request], Response]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers it stands in for
    server_version = "astro-sim"
    server: SimHTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return  # one line per request would bury the server's log

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(json_response(411, {"message": "Length Required"}), close=True)
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._send(json_response(413 if length.isdigit() else 400,
                                     {"message": "bad Content-Length"}), close=True)
            return
        body = self.rfile.read(int(length))
        target = urlsplit(self.path)
        request = Request(self.command, unquote(target.path), parse_qs(target.query),
                          {name.lower(): value for name, value in self.headers.items()}, body)
        response = self.server.answer(request)
        if response.delay > 0:
            time.sleep(response.delay)
        self._send(response)

    def _send(self, response: Response, close: bool = False) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client went away (a hang it gave up on)


class SimHTTPServer(ThreadingHTTPServer):
    """Serves ``handler`` on a loopback address until ``shutdown()``."""

    daemon_threads = True  # a hanging answer never keeps the process alive
    # A fleet opens many connections at once (verify-all's threads, parallel deploys); the
    # default listen backlog (5) would drop some and make clients wait a second to retry.
    request_queue_size = 1024

    def __init__(self, handler: Handler, host: str, port: int):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.handler = handler
        self.lock = threading.Lock()
        super().__init__((host, port), _RequestHandler)

    def answer(self, request: Request) -> Response:
        """The handler's response; a bug in it is a 500 with the traceback on stderr."""
        with self.lock:
            try:
                return self.handler(request)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                return json_response(500, {"message": f"internal simulator error: {exc}"})
