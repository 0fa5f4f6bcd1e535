"""Shared fixtures. The simulator fixture is public API (upgrade.sim.testing)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, SampleFleet

from upgrade.sim.forge import ForgeServer

pytest_plugins = ["upgrade.sim.testing", "pg_server"]

FORGE_TOKEN = "ghp_forgesimulatortoken000000000000000"


@pytest.fixture
def forge() -> Iterator[ForgeServer]:
    """A forge simulator (GitHub v3 / GitLab v4 shapes) on a free loopback port."""
    server = ForgeServer(FORGE_TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sample_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SampleFleet:
    """inventory.yaml, templates/ and playbooks/ copied to tmp, with the repos created."""
    from upgrade.demo import sample_fleet as creator

    for name in ("templates", "playbooks"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "inventory.yaml", tmp_path / "inventory.yaml")
    creator.create(tmp_path / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    for var, value in (("GIT_AUTHOR_NAME", "Test"), ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
                       ("GIT_COMMITTER_NAME", "Test"), ("GIT_COMMITTER_EMAIL", "test@example.invalid")):
        monkeypatch.setenv(var, value)
    return SampleFleet(tmp_path)
