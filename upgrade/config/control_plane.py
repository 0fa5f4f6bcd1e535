"""How to reach the Astro control plane: the ``control_plane:`` section, validated at load.

Astro and a stand-in for it (the simulator, installed apart: ``pip install ./simulator``)
differ only here: which platform API (``api_url``), which ``astro`` binary, which extra
environment, which URL scheme for the Airflow API. Nothing else in the product knows
which one it talks to.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import LMap, LScalar, join

SCHEMES = ("https", "http")
STATUS_VIA = ("auto", "api", "cli")
DEFAULT_TOKEN_ENV = "ASTRO_API_TOKEN"


@dataclass(frozen=True)
class ControlPlaneConfig:
    """How to reach the control plane. Every key can be set in ``control_plane:``."""

    # Astro's platform API; None: https://api.<$ASTRO_DOMAIN or astronomer.io>/v1, as the
    # astro CLI builds it. Clear-text http only to this machine.
    api_url: str | None = None
    astro_bin: str = "astro"  # the astro CLI (or a stand-in), a path or a name on $PATH
    extra_env: Mapping[str, str] = field(default_factory=dict)  # added to the child's env
    deploy_timeout: float = 1800.0  # s for one `astro deploy` (it builds an image)
    inspect_timeout: float = 60.0  # s for one `astro deployment inspect|list`
    kill_grace: float = 5.0  # s between SIGTERM and SIGKILL of a timed-out command
    airflow_scheme: str = "https"  # prepended to Astro's schemeless airflow_api_url
    token_env: str = DEFAULT_TOKEN_ENV  # env var holding the bearer token for Airflow
    http_timeout: float = 10.0  # s per Airflow API request (read)
    http_connect_timeout: float = 5.0  # s to open a connection
    http_retries: int = 3  # retries after the first try, on 5xx / connection / time-out
    http_backoff: float = 0.5  # s before the first retry; doubles each time
    http_backoff_max: float = 8.0  # s, cap of one back-off
    http_total_timeout: float = 60.0  # s, all tries and waits of one call together
    wait_timeout: float = 900.0  # s for a Deployment to become HEALTHY after a deploy
    poll_interval: float = 10.0  # s between inspects while waiting
    # s: verification's status looks at one workspace share one list call, made at most
    # this often (or as often as the looking check's poll_interval, when that is shorter).
    status_tick: float = 0.5
    # How status is read: auto (the platform API when ASTRO_API_TOKEN is set, else the
    # CLI), api (refused without a token), cli (always `astro deployment inspect`).
    status_via: str = "auto"


SETTING_NAMES = tuple(f.name for f in fields(ControlPlaneConfig))
_DEFAULTS = {f.name: f.default for f in fields(ControlPlaneConfig)}
# The key that named the simulator before it became configuration like Astro's own.
_RETIRED = {"simulator": "the simulator is configured like Astro itself now: api_url, "
                         "astro_bin, airflow_scheme and extra_env (docs/control-plane.md, "
                         "'Another control plane'). Replace this key with those."}


def read_control_plane(c: Checker, top: LMap) -> ControlPlaneConfig:
    """The ``control_plane:`` section; every problem is reported with its line."""
    m = c.mapping(top, "control_plane", "")
    if m is None:
        return ControlPlaneConfig()
    path = "control_plane"
    for key, why in _RETIRED.items():
        if key in m.entries:
            c.add(m.key_line(key), join(path, key), why)
    c.keys(m, (*SETTING_NAMES, *_RETIRED), path)
    values: dict[str, Any] = {}
    for key, node in m.items():
        if key not in SETTING_NAMES:
            continue
        line, full = m.key_line(key), join(path, key)
        value = _setting(c, key, node, line, full)
        if value is not None:
            values[key] = value
    return ControlPlaneConfig(**values)


def _setting(c: Checker, key: str, node: Any, line: int, full: str) -> Any:
    if key == "extra_env":
        if not c.expect(node, LMap, full, line):
            return None
        env: dict[str, str] = {}
        for name, item in node.items():
            value = item.value if isinstance(item, LScalar) else None
            if not isinstance(name, str) or not isinstance(value, str):
                c.add(node.key_line(name), join(full, name),
                      "must map variable names to string values (quote numbers).")
                continue
            env[name] = value
        return env
    value = node.value if isinstance(node, LScalar) else node
    default = _DEFAULTS[key]
    if key == "api_url":
        text = c.as_string(node, full, line)
        why = api_url_problem(text) if text is not None else None
        if why:
            c.add(line, full, why)
            return None
        return text.rstrip("/") if text else None
    if type(default) is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            c.add(line, full, f"must be a whole number of 0 or more, got {_shown(node)}.")
            return None
        return value
    if isinstance(default, float):
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value <= 0):
            c.add(line, full, f"must be a positive number of seconds, got {_shown(node)}.")
            return None
        return float(value)
    text = c.as_string(node, full, line)
    if text is None:
        return None
    choices = {"airflow_scheme": SCHEMES, "status_via": STATUS_VIA}.get(key)
    if choices and text not in choices:
        c.add(line, full, f"must be one of {', '.join(choices)}, got '{text}'."
              f"{did_you_mean(text, choices)}")
        return None
    return text


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the platform API's base URL (None when it can)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check: a bad port raises ValueError
    except ValueError as exc:  # at load, with its line: not halfway through a run
        return (f"must be an https:// URL such as https://api.astronomer.io/v1; '{url}' does "
                f"not parse as a URL ({exc}).")
    if parts.scheme not in SCHEMES or not parts.hostname:
        return (f"must be an https:// URL such as https://api.astronomer.io/v1, got '{url}'.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return (f"http:// only to this machine (the token travels with every request); use "
                f"https://{parts.netloc}{parts.path}.")
    return None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: the only clear-text targets allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(node: Any) -> str:
    return node.kind if hasattr(node, "kind") else repr(node)
