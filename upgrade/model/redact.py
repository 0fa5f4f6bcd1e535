"""The one rule for secrets in anything the tool prints or stores.

Every path that shows or records text (astro CLI output, Airflow and platform API errors,
commands on local and SSH hosts, verification checks, webhook warnings, journal notes, the
console) passes it through a :class:`Redactor`, so a secret is hidden the same way
everywhere. What counts as a secret:

* the value of every environment variable whose name says it holds one
  (:func:`is_secret_name`: ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*PASSWD*``,
  ``*CREDENTIAL*``, ``*API_KEY*``, ``*KEY_ID*``, ``*KEY``), at least
  :data:`MIN_SECRET_LEN` characters long, from this process and from whatever environment
  a command was given;
* values a caller knows to be secret (a webhook URL, a token read from a named variable);
* every value the configuration names as secret, whatever its variable is called (the
  journal's ``url_env`` password and ``password_env``, a forge's ``token_env``, the
  Airflow ``token_env``, a webhook's URL): the inventory's loader hands them to
  :func:`add_secrets` before anything can print, log, journal or report them, and from
  then on every redactor of the process hides them;
* anything shaped like a credential: a JWT, the word after ``Bearer`` or ``Basic``, and
  the password of a URL (``https://user:PASSWORD@host``).

Each is replaced by :data:`REDACTED`. Values shorter than :data:`MIN_SECRET_LEN` are not
replaced: they cannot be real credentials, and blanking every ``1`` or ``yes`` would
garble every message.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import urlsplit

REDACTED = "***"
MIN_SECRET_LEN = 4

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|KEY_ID|KEY$", re.IGNORECASE
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b((?:bearer|basic)\s+)[^\s\"',;]+")
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:\s]+):[^/@\s]+@"
)


# Values the configuration named as secret (add_secrets), longest first. Replaced as a
# whole tuple under the lock, so a redactor reads one consistent snapshot without locking.
_known: tuple[str, ...] = ()
_known_lock = threading.Lock()


def add_secrets(*secrets: str | None) -> None:
    """Make ``secrets`` secret for every redactor of this process, from now on (values
    shorter than :data:`MIN_SECRET_LEN` are ignored, as everywhere)."""
    global _known
    with _known_lock:
        values = {*_known, *(s for s in secrets if s and len(s) >= MIN_SECRET_LEN)}
        _known = tuple(sorted(values, key=len, reverse=True))


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for environment variable names whose values must never be shown."""
    # Cached: every redactor built from the environment asks about the same few names.
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Replaces known secret values and credential-shaped text with :data:`REDACTED`."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()):
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    @classmethod
    def from_env(cls, *envs: Mapping[str, str], names: Iterable[str] = ()) -> Redactor:
        """The values of secret-named variables (and of ``names``) in ``envs``."""
        wanted = set(names)
        return cls(
            value
            for env in envs
            for key, value in env.items()
            if key in wanted or is_secret_name(key)
        )

    def also(self, *secrets: str | None) -> Redactor:
        """This redactor plus more secret values."""
        return Redactor((*self._secrets, *secrets))

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`REDACTED`."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for secret in _known:
            text = text.replace(secret, REDACTED)
        # Each pattern runs only when the text holds the literal it cannot match without:
        # a substring test is a fast scan, where the patterns try every position (on a
        # 10,000-Deployment plan they were two fifths of `plan --json`'s CPU).
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        # Case-insensitive matching also folds a few non-ASCII letters (the long s, the
        # Kelvin sign) into ASCII ones, which lower() does not: such text takes the pattern.
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered or not text.isascii():
            text = _SCHEME_CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)
        if "://" in text and "@" in text:
            text = _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
        return text


def redact(text: str, *envs: Mapping[str, str]) -> str:
    """``text`` redacted with the secrets of this process's environment (and ``envs``)."""
    return Redactor.from_env(os.environ, *envs)(text)


def display_url(url: str, *, keep_path: bool = False) -> str:
    """``scheme://host/…`` (or with its path): never the query, password or fragment.

    For URLs that may carry a credential in their path or query (webhooks, health checks).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    path = parts.path if keep_path else ("/…" if parts.path not in ("", "/") else "")
    return f"{parts.scheme}://{host}{port}{path}"
