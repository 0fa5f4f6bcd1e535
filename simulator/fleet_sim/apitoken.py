"""Fake Astro API tokens: unsigned JWTs whose claims look like Astronomer's.

astro-cli parses ``ASTRO_API_TOKEN`` as a JWT without verifying the signature
and reads ``permissions`` (``organizationId:<id>``, ``workspaceId:<id>``),
``exp`` and ``apiTokenId``; the simulator does the same, so no secret is
involved anywhere.
"""

from __future__ import annotations

import base64
import json
import time


class TokenError(ValueError):
    """The token is not a JWT this simulator (or astro-cli) can read."""


def _b64(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode("ascii")


def make_token(
    organization_id: str,
    workspace_id: str | None = None,
    lifetime_seconds: int = 365 * 24 * 3600,
    token_id: str = "sim-token",
) -> str:
    """An unsigned, well-formed Astro-style API token (organization- or workspace-scoped)."""
    permissions = [f"organizationId:{organization_id}"]
    if workspace_id:
        permissions.append(f"workspaceId:{workspace_id}")
    now = int(time.time())
    claims = {
        "apiTokenId": token_id,
        "iss": "https://api.astronomer.io",
        "iat": now,
        "exp": now + lifetime_seconds,
        "permissions": permissions,
    }
    header = {"alg": "none", "typ": "JWT"}
    return ".".join((_b64(header), _b64(claims), ""))


def parse_claims(token: str) -> dict:
    """The JWT payload as a dict; raises TokenError if it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise TokenError("token is invalid or malformed")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeError) as exc:
        raise TokenError("token is invalid or malformed") from exc
    if not isinstance(claims, dict):
        raise TokenError("token is invalid or malformed")
    return claims


def permissions(claims: dict) -> list[str]:
    """The ``permissions`` claim as a list of strings (empty when absent or malformed)."""
    value = claims.get("permissions")
    if not isinstance(value, list):
        return []
    return [p for p in value if isinstance(p, str)]


def is_expired(claims: dict, now: float | None = None) -> bool:
    """True when the token carries an ``exp`` in the past."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return False
    return exp < (time.time() if now is None else now)


def scoped_id(claims: dict, kind: str) -> str:
    """The id from a ``<kind>:<id>`` permission (``organizationId``/``workspaceId``), or ""."""
    prefix = kind + ":"
    for perm in permissions(claims):
        if perm.startswith(prefix):
            return perm[len(prefix) :]
    return ""
