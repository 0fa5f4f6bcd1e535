"""Helpers shared by the test suites (importable as `support`: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).parent / "invoke")
ASTRO_FLEET = str(Path(sys.executable).parent / "astro-fleet")


# Where the committed inventory.yaml reaches the simulator (`make demo` starts it there).
SAMPLE_SIMULATOR = "http://127.0.0.1:18764"
# Wave 1's soak analysis in the committed inventory.yaml (6 s from each deploy).
SAMPLE_ANALYSIS = "        - {name: analysis, interval: 3s, count: 2}"


def without_soak(text: str) -> str:
    """The sample inventory with no soak between waves: no soak time, no soak analysis
    (whose window would hold the next wave's gate for its 6 s)."""
    lines = [line for line in text.splitlines(keepends=True)
             if not line.startswith(SAMPLE_ANALYSIS)]
    assert len(lines) < len(text.splitlines()), "the sample's soak analysis moved"
    return "".join(lines).replace("soak: 10s", "soak: 0s")


@dataclass
class SampleFleet:
    """The committed sample fleet, materialised in a tmp dir with real git repos."""

    root: Path
    forge_token: str = ""
    sim_url: str = SAMPLE_SIMULATOR

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    def repo(self, name: str) -> Path:
        return self.root / "demo-fleet" / name

    def use_simulator(self, url: str) -> None:
        """Point the inventory's control plane (and the CI stand-ins' hooks) at a running
        simulator (by URL), with this venv's astro-sim and a fake token in its extra_env."""
        import json

        from simulators import control_plane_settings

        text = self.inventory.read_text()
        start = text.index("\ncontrol_plane:") + 1
        end = text.index("\njournal:", start) + 1
        block = "control_plane:\n" + "".join(
            f"  {key}: {json.dumps(value)}\n" for key, value in control_plane_settings(url).items())
        self.inventory.write_text(text[:start] + block + text[end:])
        self.sim_url = url
        for config in (self.root / "demo-fleet" / ".remotes").glob("*.git/astro-ci.json"):
            doc = json.loads(config.read_text())
            config.write_text(json.dumps({**doc, "sim_url": url}))

    def use_forge(self, forge: Any) -> None:
        """Serve customer-360 (the sample's pull-request repo) from a test's forge simulator,
        and give commands its token."""
        text = self.inventory.read_text()
        self.inventory.write_text(text.replace("forge_url: http://127.0.0.1:18765",
                                               f"forge_url: {forge.url}"))
        forge.add_project("acme/customer-360",
                          self.root / "demo-fleet" / ".remotes" / "customer-360.git")
        self.forge_token = forge.state.token

    def seed(self) -> int:
        """Create the inventory's Deployments in the simulator, each at its Dockerfile's
        version (what `make demo` seeds); how many."""
        from demo.sample_fleet import seed_specs
        from fleet_sim import lifecycle

        return len(lifecycle.seed(self.sim_url, seed_specs(self.inventory)))

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run the real `astro-fleet` command in the fleet's directory."""
        return subprocess.run(
            [ASTRO_FLEET, *args], cwd=self.root, capture_output=True, text=True,
            env={**os.environ, "COLUMNS": "200", "GITHUB_TOKEN": self.forge_token, **(env or {})},
            timeout=300,
        )

    def git(self, repo: str, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.repo(repo), capture_output=True, text=True, check=True
        ).stdout


class NotSettled(AssertionError):
    """The Deployment did not become HEALTHY in time; ``last`` is what was last seen."""

    def __init__(self, message: str, last: Any):
        super().__init__(message)
        self.last = last


def wait_healthy(cp: Any, deployment_id: str, workspace_id: str, *, image_tag: str | None = None,
                 timeout: float = 10.0, poll_interval: float = 0.05) -> Any:
    """Read ``cp.status`` until HEALTHY (running ``image_tag``, if given); NotSettled if not."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cp.status(deployment_id, workspace_id)
        if last.is_healthy and (image_tag is None or last.image_tag == image_tag):
            return last
        if time.monotonic() + poll_interval > deadline:
            raise NotSettled(f"{deployment_id} last seen {last.status}", last)
        time.sleep(poll_interval)
