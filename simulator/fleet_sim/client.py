"""One HTTP request to the simulator: what astro-sim, fleet-sim and the tests send."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit


class SimConnectionError(OSError):
    """The simulator could not be reached or answered with something unreadable."""


def request(
    base_url: str,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request (a JSON ``body``, if any); return (status, lower-cased headers, body)."""
    url = urlsplit(base_url)
    if url.scheme != "http" or not url.hostname or url.port is None:
        raise SimConnectionError(f"expected the simulator's http://HOST:PORT, got {base_url!r}")
    headers = {"Accept": "application/json", "User-Agent": "astro-sim"}
    payload = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        connection.request(method, url.path.rstrip("/") + path, payload, headers)
        response = connection.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read())
    except (OSError, http.client.HTTPException) as exc:
        raise SimConnectionError(f"cannot reach the Astro simulator at {base_url}: {exc}") from exc
    finally:
        connection.close()
