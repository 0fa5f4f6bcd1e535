"""A small fleet on disk and in the simulator, with one Deployment per drift kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from simulators import SimHandle

from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.hosts.host import LocalHost
from upgrade.plan.facts import RepoFile, read_dockerfiles

# repo name → (Dockerfile FROM tag, [(Deployment id, workspace, what the simulator holds)])
FLEET = {
    "clean": ("12.4.0", [("clean-1", "ws-1", {"runtime_version": "12.4.0"}),
                         ("clean-2", "ws-2", {"runtime_version": "12.4.0"})]),
    "ahead": ("12.5.0", [("ahead-1", "ws-1", {"runtime_version": "12.4.0"})]),
    "below": ("12.4.0", [("below-1", "ws-2", {"runtime_version": "12.4.0"})]),
    "sick": ("12.4.0", [("sick-1", "ws-1", {"runtime_version": "12.4.0",
                                            "status": "UNHEALTHY"})]),
    "ghost": ("12.4.0", [("ghost-1", "ws-2", None)]),
    "flaky": ("12.4.0", [("flaky-1", "ws-1", {"runtime_version": "12.4.0"})]),
    "latest": ("latest", [("latest-1", "ws-1", {"runtime_version": "12.4.0"})]),
    "sleepy": ("12.4.0", [("sleepy-1", "ws-2", {"runtime_version": "12.4.0",
                                                "status": "HIBERNATING"})]),
    "errors": ("12.4.0", [("errors-1", "ws-1", {"runtime_version": "12.4.0", "import_errors": [
        {"filename": "dags/a.py", "stack_trace": "boom"},
        {"filename": "dags/b.py", "stack_trace": "boom"}]})]),
}


@dataclass
class Fleet:
    sim: SimHandle
    cp: ControlPlane
    inventory: Inventory

    def files(self) -> dict[str, RepoFile]:
        host = LocalHost()
        return read_dockerfiles(self.inventory, self.inventory.deployments, lambda repo: host)


def fast_cp(sim: SimHandle, **overrides: object) -> ControlPlane:
    return ControlPlane(sim.control_plane(http_retries=0, http_timeout=0.5, http_connect_timeout=0.5,
        http_total_timeout=1.5, **overrides))


@pytest.fixture
def fleet(sim: SimHandle, tmp_path: Path) -> Iterator[Fleet]:
    lines = ['target: "12.5"', "groups:", "  all-of-it: {wave: 1}", "repos:"]
    seed = []
    for repo, (tag, deps) in FLEET.items():
        path = tmp_path / "repos" / repo
        path.mkdir(parents=True)
        (path / "Dockerfile").write_text(f"FROM quay.io/astronomer/astro-runtime:{tag}\n")
        lines += [f"  {repo}:", f"    path: repos/{repo}", "    groups: [all-of-it]",
                  "    deployments:"]
        for dep_id, ws, spec in deps:
            lines.append(f"      - {{id: {dep_id}, name: {dep_id}-name, workspace_id: {ws}}}")
            if spec is not None:
                seed.append({"id": dep_id, "name": f"{dep_id}-name", "workspace_id": ws, **spec})
    (tmp_path / "inventory.yaml").write_text("\n".join(lines) + "\n")
    for spec in seed:
        sim.add_deployment(**spec)
    sim.set_fault("flaky-1", airflow_5xx=1000)
    with fast_cp(sim) as cp:
        yield Fleet(sim, cp, load_inventory(tmp_path / "inventory.yaml"))
