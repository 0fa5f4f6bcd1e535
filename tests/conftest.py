"""Shared fixtures. The simulators' fixtures (``sim``, ``forge``) are in tests/simulators.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import ROOT, SampleFleet

pytest_plugins = ["simulators", "pg_server"]


@pytest.fixture
def sample_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SampleFleet:
    """inventory.yaml, templates/ and playbooks/ copied to tmp, with the repos created."""
    from demo import sample_fleet as creator

    for name in ("templates", "playbooks"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "inventory.yaml", tmp_path / "inventory.yaml")
    creator.create(tmp_path / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    for var, value in (("GIT_AUTHOR_NAME", "Test"), ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
                       ("GIT_COMMITTER_NAME", "Test"), ("GIT_COMMITTER_EMAIL", "test@example.invalid")):
        monkeypatch.setenv(var, value)
    return SampleFleet(tmp_path)
