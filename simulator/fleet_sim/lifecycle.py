"""Start, find, drive and stop an Astro simulator process (``fleet-sim``, the tests).

The server runs detached (its own session) so it outlives the command that started it;
``state_dir/server.json`` records its url and pid, and every function here works from
that file alone. The admin calls (``seed``, ``reset``, ``clock``…) take the server's URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fleet_sim.apitoken import make_token
from fleet_sim.astro.faults import load_faults_file
from fleet_sim.astro.server import INFO_NAME
from fleet_sim.client import SimConnectionError, request
from fleet_sim.errors import InputError, NotRunning, SimError

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
DEFAULT_ORGANIZATION = "org-sim"
SERVER_MODULE = "fleet_sim.astro.server"


@dataclass(frozen=True)
class SimInfo:
    """A running simulator."""

    url: str
    pid: int
    port: int
    state_dir: Path


# Popen handles of servers this process started, so stop() can reap them.
_children: dict[int, subprocess.Popen] = {}


def _read_info(state_dir: Path) -> SimInfo | None:
    try:
        raw = json.loads((Path(state_dir) / INFO_NAME).read_text(encoding="utf-8"))
        return SimInfo(str(raw["url"]), int(raw["pid"]), int(raw["port"]), Path(state_dir))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_our_server(pid: int) -> bool:
    """True if ``pid`` is alive and is a simulator (guards against pid reuse)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return SERVER_MODULE.encode() in cmdline


def _healthy(url: str) -> bool:
    try:
        status, _, _ = request(url, "GET", "/_sim/health", timeout=2.0)
    except SimConnectionError:
        return False
    return status == 200


def start(state_dir: Path, port: int = 0, time_scale: float = 1.0, faults: Path | None = None,
          clock: str | None = None) -> SimInfo:
    """Spawn a detached simulator on 127.0.0.1 and wait until it answers."""
    state_dir = Path(state_dir).resolve()
    if time_scale <= 0:
        raise InputError(f"time scale: expected a number > 0, got {time_scale}")
    if faults is not None:
        load_faults_file(Path(faults))  # refuse a bad file here, with file/line/key
    existing = status(state_dir)
    if existing is not None:
        raise SimError(f"a simulator is already running for {state_dir} at {existing.url} "
                       f"(pid {existing.pid}); stop it first")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / INFO_NAME).unlink(missing_ok=True)
    argv = [sys.executable, "-m", SERVER_MODULE, "--state-dir", str(state_dir),
            "--port", str(port), "--time-scale", repr(float(time_scale))]
    if faults is not None:
        argv += ["--faults", str(Path(faults).resolve())]
    if clock is not None:
        argv += ["--clock", clock]
    with open(state_dir / "server.log", "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
    _children[child.pid] = child
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = _read_info(state_dir)
        if info is not None and info.pid == child.pid and _healthy(info.url):
            return info
        if child.poll() is not None:
            _children.pop(child.pid, None)
            tail = (state_dir / "server.log").read_text(errors="replace")[-2000:]
            raise SimError(f"the simulator exited with code {child.returncode} while "
                           f"starting:\n{tail}")
        time.sleep(0.01)
    _terminate(child.pid)
    raise SimError(f"the simulator did not answer within {START_TIMEOUT:.0f} s "
                   f"(log: {state_dir / 'server.log'})")


def status(state_dir: Path) -> SimInfo | None:
    """The running simulator for ``state_dir``, or None."""
    info = _read_info(Path(state_dir).resolve())
    if info is None or not _is_our_server(info.pid) or not _healthy(info.url):
        return None
    return info


def url_of(state_dir: Path) -> str:
    """The URL of the simulator running for ``state_dir``; NotRunning if none runs."""
    info = status(state_dir)
    if info is None:
        raise NotRunning(f"no Astro simulator is running for {Path(state_dir).resolve()}; "
                         "start it first (fleet-sim start)")
    return info.url


def stop(state_dir: Path) -> bool:
    """Stop the simulator for ``state_dir``; True if one was running."""
    state_dir = Path(state_dir).resolve()
    info = _read_info(state_dir)
    if info is None or not _is_our_server(info.pid):
        (state_dir / INFO_NAME).unlink(missing_ok=True)
        return False
    _terminate(info.pid)
    (state_dir / INFO_NAME).unlink(missing_ok=True)
    return True


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if _exited(pid):
            return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _exited(pid)


def _exited(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        _children.pop(pid, None)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not _is_our_server(pid)


def admin(url: str, method: str, path: str, body: object = None) -> object:
    """One admin call (``/_sim/…``); InputError for a refused request (400), NotRunning
    when the simulator does not answer."""
    try:
        code, _, raw = request(url, method, path, body)
    except SimConnectionError as exc:
        raise NotRunning(str(exc)) from exc
    payload = json.loads(raw) if raw else None
    if code // 100 != 2:
        message = payload.get("message") if isinstance(payload, dict) else raw[:300]
        if code == 400:
            raise InputError(f"simulator refused {method} {path}: {message}")
        raise SimError(f"simulator answered {code} to {method} {path}: {message}")
    return payload


def seed(url: str, deployments: list[dict]) -> list[dict]:
    """Create (or replace) Deployments: each needs id, name, workspace_id, runtime_version."""
    result = admin(url, "POST", "/_sim/deployments", {"deployments": deployments})
    return result if isinstance(result, list) else []


def reset(url: str) -> None:
    """Forget every Deployment and fault; timing back to defaults."""
    admin(url, "POST", "/_sim/reset")


def clock(url: str, mode: str | None = None, advance: float | None = None) -> dict:
    """Read the clock, switch its mode (``wall``/``manual``) or move it forward by
    ``advance`` simulated seconds; returns ``{mode, now, epoch, time_scale}``."""
    body = {k: v for k, v in (("mode", mode), ("advance", advance)) if v is not None}
    result = admin(url, "POST" if body else "GET", "/_sim/clock", body or None)
    assert isinstance(result, dict)
    return result


def sim_env(
    url: str, organization_id: str = DEFAULT_ORGANIZATION, workspace_id: str | None = None
) -> dict[str, str]:
    """Environment for a child ``astro-sim``: ASTRO_SIM_URL and a fake ASTRO_API_TOKEN.

    The token is organization-scoped unless ``workspace_id`` is given (then the
    CLI's context workspace is that workspace, as with a Workspace token).
    """
    return {
        "ASTRO_SIM_URL": url,
        "ASTRO_API_TOKEN": make_token(organization_id, workspace_id),
    }
