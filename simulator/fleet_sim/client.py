"""A tiny HTTP/1.1 client over a raw socket, for talking to the simulator.

``http.client`` pulls in ``ssl`` and ``email`` (about 17 ms of imports); the
``astro-sim`` command must start in well under 100 ms and only ever talks to
our own loopback server, which always answers with Content-Length. So this
sends one request per connection and reads until the server closes it, over ``_socket``:
the ``socket`` module's enums and selectors would cost each command another 5 ms.
"""

from __future__ import annotations

import _socket

from upgrade.sim import jsoncodec


class SimConnectionError(OSError):
    """The simulator could not be reached or answered with something unreadable."""


def split_url(base_url: str) -> tuple[str, int, str]:
    """``http://host:port[/prefix]`` -> (host, port, prefix)."""
    if not base_url.startswith("http://"):
        raise SimConnectionError(f"only http:// URLs are supported, got {base_url!r}")
    rest = base_url[len("http://") :]
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SimConnectionError(f"the URL {base_url!r} has no host:port")
    return host.strip("[]"), int(port), ("/" + prefix).rstrip("/")


def request(
    base_url: str,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request; return (status, lower-cased headers, body bytes)."""
    host, port, prefix = split_url(base_url)
    payload = b"" if body is None else jsoncodec.dumps(body).encode()
    lines = [
        f"{method} {prefix}{path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: close",
        "User-Agent: astro-sim",
        "Accept: application/json",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {len(payload)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    try:
        sock = _connect(host, port, timeout)
        try:
            sock.sendall(raw)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            sock.close()
    except OSError as exc:
        raise SimConnectionError(f"cannot reach the Astro simulator at {base_url}: {exc}") from exc
    return _parse_response(b"".join(chunks), base_url)


def _connect(host: str, port: int, timeout: float) -> _socket.socket:
    """``socket.create_connection``: each address of ``host`` in turn, the last error raised."""
    error: OSError = OSError(f"no address for {host}")
    # A str host is encoded with the idna codec, whose import costs a call ~1 ms of CPU.
    name = host.encode("ascii") if host.isascii() else host.encode("idna")
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0,
                                                               _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


def _parse_response(data: bytes, base_url: str) -> tuple[int, dict[str, str], bytes]:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise SimConnectionError(f"the Astro simulator at {base_url} sent no HTTP response")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise SimConnectionError(f"bad status line from {base_url}: {status_line!r}") from exc
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    body = rest[: int(length)] if length and length.isdigit() else rest
    return status, headers, body


def get_json(base_url: str, path: str, token: str | None = None) -> object:
    """GET and decode JSON; raises SimConnectionError on a non-2xx answer."""
    status, _, body = request(base_url, "GET", path, token=token)
    if status // 100 != 2:
        raise SimConnectionError(f"GET {path} answered {status}: {body[:200]!r}")
    return jsoncodec.loads(body)
