"""`approve` that starts a rollout is one transaction: killed inside it, it leaves nothing.

Before, the rollout was committed first and the approval after it, so a kill between the
two left an active rollout, pinned, with no approval recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from upgrade.journal.store import Journal

INVENTORY = """\
target: "13"
journal: .upgrade
waves:
  2: {approval: true}
repos:
  app:
    path: repos/app
    deployments:
      - {id: cl1, name: app-dev, workspace_id: ws1, wave: 1}
      - {id: cl2, name: app-prod, workspace_id: ws1, wave: 2}
"""

# The real `astro-fleet approve`, with one kill point: SIGKILL the moment the approval's
# own UPDATE reaches the database (a test hook in the child only; the code is unchanged).
CHILD = """
import os, signal, sys
from upgrade.journal.sqlite import SqliteDatabase
def killing(real):
    def statement(self, sql, *args):
        if os.environ.get("KILL_AT") and sql.startswith(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, sql, *args)
    return statement
SqliteDatabase.execute = killing(SqliteDatabase.execute)
SqliteDatabase.insert = killing(SqliteDatabase.insert)
from upgrade.cli.program import main
sys.argv[0] = "astro-fleet"
main()
"""


def approve(root: Path, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"KILL_AT": kill_at} if kill_at else {})}
    return subprocess.run([sys.executable, "-c", CHILD, "approve", "--wave", "2", "--reason",
                           "CAB-1234 signed off"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("kill_at", [
    "UPDATE waves SET approved_by",  # the approval itself
    "INSERT INTO waves",             # the wave row the approval goes on
    "INSERT INTO events",            # the rollout's event, before the approval's
])
def test_approve_killed_inside_its_transaction_leaves_nothing(tmp_path: Path,
                                                              kill_at: str) -> None:
    (tmp_path / "repos" / "app").mkdir(parents=True)
    (tmp_path / "repos" / "app" / "Dockerfile").write_text(
        "FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    (tmp_path / "inventory.yaml").write_text(INVENTORY)

    killed = approve(tmp_path, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal_file = tmp_path / ".upgrade" / "journal.db"
    if journal_file.exists():
        with Journal.open(journal_file) as journal:
            # Both or neither: never a rollout started without the approval it was for.
            assert journal.rollouts() == []
            assert [e.kind for e in journal.events(None)
                    if e.kind in ("rollout_started", "approval")] == []

    again = approve(tmp_path, None)
    assert again.returncode == 0, again.stderr
    with Journal.open(journal_file) as journal:
        [rollout] = journal.rollouts()
        wave = journal.wave(rollout.id, 2)
        assert wave is not None and wave.approval is not None
        assert wave.approval.reason == "CAB-1234 signed off"
