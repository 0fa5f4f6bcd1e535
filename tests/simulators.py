"""The simulators as the tests use them: the ``sim`` and ``forge`` fixtures, ``SimHandle``
and ``make_astro_project``.

A pytest plugin (``tests/conftest.py`` loads it) over the simulator distribution's public
API (``fleet_sim.lifecycle``, ``fleet_sim.forge``). Each test that asks for ``sim`` gets a
fresh simulator process on a free loopback port, with a state directory of its own and a
time scale of 0.001 (a 60 s deploy takes 60 ms), stopped when the test ends. The product
reaches it as it would reach Astro: through configuration (``SimHandle.control_plane``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_schemas.validate import validate_all

from fleet_sim import lifecycle
from fleet_sim.forge import ForgeServer
from upgrade.config.control_plane import ControlPlaneConfig

FAST_TIME_SCALE = 0.001
FORGE_TOKEN = "ghp_forgesimulatortoken000000000000000"

_DAG = '''"""A minimal DAG so the project is not empty."""

from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("example_dag", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    EmptyOperator(task_id="noop")
'''


def astro_sim_bin() -> str:
    """``astro-sim`` as installed in this virtualenv (make installs ./simulator there)."""
    found = shutil.which("astro-sim", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("astro-sim is not installed in this virtualenv; run "
                           "`.venv/bin/pip install -e ./simulator` (make does)")
    return str(Path(found).resolve())


def control_plane_settings(url: str, **settings: Any) -> dict[str, Any]:
    """The inventory's ``control_plane:`` keys that reach the simulator at ``url``
    (``settings`` added): its platform API, ``astro-sim``, plain http, and the environment
    astro-sim needs (the simulator's URL and a fake Organization token)."""
    return {"api_url": f"{url}/v1", "astro_bin": astro_sim_bin(), "airflow_scheme": "http",
            **settings, "extra_env": {**lifecycle.sim_env(url), **settings.get("extra_env", {})}}


class SimHandle:
    """A running Astro simulator, as seen by a test."""

    def __init__(self, state_dir: Path, time_scale: float = FAST_TIME_SCALE):
        self.state_dir = Path(state_dir)
        self.time_scale = time_scale
        self.astro_bin: str = astro_sim_bin()
        self.info = lifecycle.start(self.state_dir, port=0, time_scale=time_scale)
        self.url: str = self.info.url
        # What a shell gets from `export ASTRO_SIM_URL=… ASTRO_API_TOKEN="$(fleet-sim token)"`.
        self.env: dict[str, str] = lifecycle.sim_env(self.url)

    # ------------------------------------------------------------------ the product's view
    def control_plane_settings(self, **settings: Any) -> dict[str, Any]:
        """The inventory's ``control_plane:`` keys that reach this simulator."""
        return control_plane_settings(self.url, **settings)

    def control_plane(self, **settings: Any) -> ControlPlaneConfig:
        """The product's ``ControlPlaneConfig`` for this simulator (``settings`` added)."""
        return ControlPlaneConfig(**control_plane_settings(self.url, **settings))

    # ------------------------------------------------------------------ admin
    def _call(self, method: str, path: str, body: object = None) -> Any:
        return lifecycle.admin(self.url, method, path, body)

    def add_deployment(
        self,
        id: str,
        name: str,
        workspace_id: str = "ws-1",
        runtime_version: str = "12.4.0",
        **extra: object,
    ) -> dict:
        """Create (or replace) a Deployment; ``extra``: status, airflow_version, import_errors…"""
        spec = {"id": id, "name": name, "workspace_id": workspace_id,
                "runtime_version": runtime_version, **extra}
        return lifecycle.seed(self.url, [spec])[0]

    def set_fault(self, deployment_id: str, **fault_fields: object) -> dict:
        """Merge fault fields for one Deployment (None clears a field); see docs/simulator.md."""
        result = self._call("PUT", f"/_sim/faults/{deployment_id}", fault_fields)
        return result if isinstance(result, dict) else {}

    def clear_faults(self, deployment_id: str) -> None:
        """Remove every fault of one Deployment."""
        self._call("DELETE", f"/_sim/faults/{deployment_id}")

    def throttle(self, count: int, retry_after: float | None = None,
                 kind: str | None = None) -> dict:
        """Answer the next ``count`` platform API requests (of ``kind``, a name of
        ``requests()``) with 429, and ``Retry-After: retry_after`` when given."""
        return self._call("POST", "/_sim/throttle",
                          {"count": count, "retry_after": retry_after, "kind": kind})

    def requests(self) -> dict[str, int]:
        """The requests served so far, by kind (``GET /_sim/requests``)."""
        return self._call("GET", "/_sim/requests")

    def deployment(self, id: str) -> dict:
        """The full simulated state of one Deployment, including ``deploys``."""
        return self._call("GET", f"/_sim/deployments/{id}")

    def update_deployment(self, id: str, **fields: object) -> dict:
        """Change a Deployment's fields directly (status, runtime_version, import_errors…)."""
        return self._call("POST", f"/_sim/deployments/{id}", fields)

    def configure(self, **delays: object) -> dict:
        """Set timing (deploy_seconds, healthy_after_seconds, time_scale, …); returns the config."""
        result = self._call("POST", "/_sim/config", delays)
        if "time_scale" in delays:
            self.time_scale = float(delays["time_scale"])  # type: ignore[arg-type]
        return result

    def state(self) -> dict:
        """Everything: config, faults and every Deployment."""
        return self._call("GET", "/_sim/state")

    def reset(self) -> None:
        """Forget every Deployment and fault."""
        lifecycle.reset(self.url)

    # ------------------------------------------------------------------ the clock
    def clock(self) -> dict:
        """The simulator's clock: ``{mode, now, epoch, time_scale}``."""
        return lifecycle.clock(self.url)

    def freeze_clock(self) -> dict:
        """Stop simulated time: from now on it moves only with ``advance``."""
        return lifecycle.clock(self.url, mode="manual")

    def advance(self, seconds: float) -> dict:
        """Move simulated time forward by ``seconds`` (simulated seconds, as the delay
        settings are: ``advance(120)`` passes ``healthy_after_seconds`` whatever the time
        scale)."""
        return lifecycle.clock(self.url, advance=seconds)

    # ------------------------------------------------------------------ the process
    def restart(self) -> None:
        """Stop the server and start it again on the same port and state directory."""
        port = self.info.port
        lifecycle.stop(self.state_dir)
        self.info = lifecycle.start(self.state_dir, port=port, time_scale=self.time_scale)
        assert self.info.url == self.url

    def stop(self) -> None:
        """Stop the server (the fixture does this for you)."""
        lifecycle.stop(self.state_dir)

    def run(
        self,
        *args: str,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``astro-sim ARGS`` with this simulator's environment."""
        full_env = {**os.environ, **self.env, **(env or {})}
        return subprocess.run(
            [self.astro_bin, *args],
            cwd=cwd,
            env=full_env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """A fresh simulator for one test (free port, fast time scale), stopped afterwards."""
    handle = SimHandle(tmp_path_factory.mktemp("astro-sim"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def forge() -> Iterator[ForgeServer]:
    """A forge simulator (GitHub v3 / GitLab v4 shapes) on a free loopback port. When the
    test is done, every answer it served is validated against the public API descriptions
    (tests/forge_schemas): one that does not match fails the test."""
    server = ForgeServer(FORGE_TOKEN).start()
    try:
        yield server
    finally:
        server.stop()
    validate_all(server.state.served)


def make_astro_project(path: Path, dockerfile_text: str, origin: str | None = None) -> Path:
    """A real Astro project: .astro/config.yaml, a DAG, the Dockerfile, one git commit;
    ``origin`` (a URL, never contacted by a deploy) makes its deploys carry git metadata."""
    path = Path(path)
    (path / ".astro").mkdir(parents=True, exist_ok=True)
    (path / "dags").mkdir(exist_ok=True)
    (path / ".astro" / "config.yaml").write_text(
        f"project:\n  name: {path.name}\n", encoding="utf-8"
    )
    (path / "dags" / "example_dag.py").write_text(_DAG, encoding="utf-8")
    (path / "Dockerfile").write_text(dockerfile_text, encoding="utf-8")
    (path / "requirements.txt").write_text("", encoding="utf-8")
    git = ["git", "-c", "user.name=Astro Sim", "-c", "user.email=sim@example.invalid",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Initial Astro project"], cwd=path, check=True)
    if origin is not None:
        subprocess.run([*git, "remote", "add", "origin", origin], cwd=path, check=True)
    return path
