"""Shared helpers for the journal and lock tests: versions, a settable clock, child processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from upgrade.journal.records import DeploymentEntry
from upgrade.model.versions import RuntimeVersion, parse_version

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = parse_version("12.4.2")
FROM = parse_version("12.1.0")


def V(text: str) -> RuntimeVersion:
    """A version literal for test tables."""
    return parse_version(text)


class FakeClock:
    """A clock the test moves by hand, so soak arithmetic is exact."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def entries(ids: Iterable[str], to: RuntimeVersion = TARGET) -> list[DeploymentEntry]:
    return [DeploymentEntry(i, f"name-{i}", f"repo-{i[:6]}", to, FROM) for i in ids]


def deployed_at(journal: Any, deployment_id: str, version: RuntimeVersion) -> None:
    """``deployment_id`` deployed at ``version`` by a rollout of its own, the production path
    to a high-water mark; that rollout is then abandoned, so the next one may start."""
    run = journal.start_rollout(str(version), version, "inventory.yaml", "alice@laptop")
    journal.ensure_deployments(run.id, 1, entries([deployment_id], to=version))
    journal.transition(run.id, deployment_id, "deploying", count_deploy=True)
    journal.transition(run.id, deployment_id, "deployed")
    journal.abandon_rollout(run.id, "alice@laptop", "seeding a high-water mark")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def python_child(code: str, *args: str) -> subprocess.Popen[str]:
    """A real Python process running ``code`` with the project importable; stdout piped."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)


def wait_line(proc: subprocess.Popen[str], expected: str) -> str:
    """Read the child's stdout until a line starting with ``expected``; fail if it exits."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(expected):
            return line.strip()
    stderr = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"child exited ({proc.wait()}) before printing {expected!r}: {stderr}")
