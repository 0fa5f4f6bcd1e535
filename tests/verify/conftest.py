"""Fixtures for the verification checks: a fast control plane on the simulator, a deploy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from simulators import SimHandle, make_astro_project

from tests.verify.helpers import TARGET
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.model.catalog import Catalog, load_catalog


@pytest.fixture
def cp(sim: SimHandle) -> Iterator[ControlPlane]:
    """The production control plane driving the simulator, with short HTTP time-outs."""
    config = sim.control_plane(http_retries=0, http_timeout=0.5, http_connect_timeout=0.5,
        http_total_timeout=2.0, poll_interval=0.05, wait_timeout=5.0,
    )
    with ControlPlane(config) as plane:
        yield plane


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def deploy(sim: SimHandle, cp: ControlPlane, tmp_path: Path) -> Callable[..., Path]:
    """Deploy a real Astro project pinned to ``version`` through ``astro-sim deploy``."""

    def run(dep_id: str = "dep-1", version: str = TARGET, workspace_id: str = "ws-1") -> Path:
        repo = make_astro_project(tmp_path / f"repo-{dep_id}",
                                  f"FROM quay.io/astronomer/astro-runtime:{version}\n")
        cp.deploy(dep_id, workspace_id, repo, "verification test")
        return repo

    return run
