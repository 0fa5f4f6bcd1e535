"""A small HTTP/1.1 keep-alive server on asyncio's Protocol layer.

Why not aiohttp or http.server: the simulator must answer 2,000 status polls
a second from 200 clients with a median under 5 ms on 2 cores, and hang
individual requests for minutes without holding a thread. A Protocol with
in-order (pipelining-safe) responses and ``call_later`` for delayed answers
does both with no dependency and no per-request task.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_HEAD = 64 * 1024
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
        """The body decoded as JSON (``{}`` when empty)."""
        if not self.body:
            return {}
        return json.loads(self.body)


@dataclass
class Response:
    """What to send back; ``delay`` (seconds) postpones the answer without blocking."""

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


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse, dispatch, answer in order, keep alive."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.pending is None:
            self._process()

    def _process(self) -> None:
        while self.pending is None and not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._fail(431)
                return
            parsed = self._parse_head(bytes(self.buffer[:end]))
            if parsed is None:
                self._fail(400)
                return
            method, target, version, headers = parsed
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._fail(411)
                return
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit() or int(length_text) > MAX_BODY:
                self._fail(400 if not length_text.isdigit() else 413)
                return
            length = int(length_text)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            connection = headers.get("connection", "").lower()
            keep_alive = (
                connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            )
            path, _, query = target.partition("?")
            request = Request(method, unquote(path), parse_qs(query), headers, body)
            response = self._dispatch(request)
            if response.delay > 0:
                loop = asyncio.get_running_loop()
                self.pending = loop.call_later(
                    response.delay, self._send_later, response, keep_alive
                )
                return
            self._send(response, keep_alive)
            if not keep_alive:
                return

    def _dispatch(self, request: Request) -> Response:
        try:
            return self.handler(request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return json_response(500, {"message": f"internal simulator error: {exc}"})

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            return None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                return None
            headers[name.strip().lower()] = value.strip()
        return method, target, version, headers

    def _send_later(self, response: Response, keep_alive: bool) -> None:
        self.pending = None
        if self.closed:
            return
        self._send(response, keep_alive)
        if keep_alive:
            self._process()

    def _send(self, response: Response, keep_alive: bool) -> None:
        if self.transport is None or self.closed:
            return
        reason = _REASONS.get(response.status, "Unknown")
        head = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: " + ("keep-alive" if keep_alive else "close"),
        ]
        head.extend(f"{name}: {value}" for name, value in response.headers)
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        if not keep_alive:
            self.transport.close()
            self.closed = True

    def _fail(self, status: int) -> None:
        self._send(json_response(status, {"message": _REASONS.get(status, "error")}), False)


async def serve(handler: Handler, host: str, port: int) -> asyncio.base_events.Server:
    """Start listening; the caller owns the returned server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(handler), host, port, backlog=1024)
