"""Fake Astro API tokens: unsigned JWTs whose claims look like Astronomer's.

astro-cli parses ``ASTRO_API_TOKEN`` as a JWT without verifying the signature
and reads ``permissions`` (``organizationId:<id>``, ``workspaceId:<id>``),
``exp`` and ``apiTokenId``; the simulator does the same, so no secret is
involved anywhere. Stdlib only: the ``astro-sim`` command imports this.
"""

from __future__ import annotations

import binascii
import time

from upgrade.sim import jsoncodec

# base64's urlsafe functions are these translations around binascii; base64 itself
# imports re, which would cost every astro-sim call about 8 ms of CPU.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


class TokenError(ValueError):
    """The token is not a JWT this simulator (or astro-cli) can read."""


def _b64(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


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
    return ".".join((_b64(jsoncodec.dumps(header).encode()),
                     _b64(jsoncodec.dumps(claims).encode()), ""))


def parse_claims(token: str) -> dict:
    """The JWT payload as a dict; raises TokenError if it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise TokenError("token is invalid or malformed")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = jsoncodec.loads(
            binascii.a2b_base64(payload.encode("ascii").translate(_FROM_URLSAFE)))
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
