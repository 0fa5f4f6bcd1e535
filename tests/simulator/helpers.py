"""Small helpers shared by the simulator tests."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from simulators import SimHandle, make_astro_project

from fleet_sim.client import request

AF2 = "FROM quay.io/astronomer/astro-runtime:{v}\n"
AF3 = "FROM astrocrpublic.azurecr.io/runtime:{v}\n"


def project(tmp_path: Path, dockerfile: str, name: str = "proj") -> Path:
    """A committed Astro project with this Dockerfile."""
    return make_astro_project(tmp_path / name, dockerfile)


def deploy(
    sim: SimHandle, proj: Path, dep_id: str, *extra: str, workspace: str = "ws-1", stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``astro-sim deploy <id> --workspace-id <ws> …`` in the project."""
    return sim.run("deploy", dep_id, "--workspace-id", workspace, *extra, cwd=proj, input=stdin)


def wait_status(sim: SimHandle, dep_id: str, status: str, timeout: float = 5.0) -> dict:
    """Poll the admin view until the Deployment shows ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        dep = sim.deployment(dep_id)
        if dep["status"] == status or time.monotonic() > deadline:
            return dep
        time.sleep(0.01)


def airflow_get(
    sim: SimHandle, dep_id: str, api: str, path: str, token: str | None = None, timeout: float = 5.0
) -> tuple[int, object]:
    """GET the Deployment's Airflow API (``api`` is "v1" or "v2")."""
    tok = sim.env["ASTRO_API_TOKEN"] if token is None else token
    status, _, body = request(
        sim.url, "GET", f"/d/{dep_id}/api/{api}{path}", token=tok or None, timeout=timeout
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def platform_get(sim: SimHandle, path: str, token: str | None = None) -> tuple[int, object]:
    """GET the Astro platform API under /v1."""
    tok = sim.env["ASTRO_API_TOKEN"] if token is None else token
    status, _, body = request(sim.url, "GET", "/v1" + path, token=tok or None)
    return status, json.loads(body)
