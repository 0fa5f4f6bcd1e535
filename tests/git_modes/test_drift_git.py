"""`verify-all` in git modes: the remote's default branch is the truth (fetched), a deploy
from a commit that is not on it is drift, so is an unmerged PR of the active rollout; the
rollout's own work in flight is not."""

from __future__ import annotations

import json
from pathlib import Path

from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import make_git_fleet
from tests.git_modes.test_faults import _kill_when
from tests.rollout.helpers import git


def _verify_all(fleet) -> tuple[int, dict]:
    out = fleet.invoke("verify-all", "--json")
    return out.returncode, json.loads(out.stdout)


def test_verify_all_reads_the_remote_not_the_working_tree(tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    assert fleet.invoke("upgrade", "--wave", "1").returncode == 0
    repo = fleet.repo_path("r00")
    git(repo, "switch", "-q", "-c", "old", "HEAD~1")  # the working tree says 12.1.0 again
    code, doc = _verify_all(fleet)
    assert code == 0, doc
    assert doc["deployments"][0]["dockerfile"] == "12.4.0"
    assert any("remote's default branch" in note for note in doc["notes"])


def test_a_deploy_from_an_unpushed_commit_is_drift(tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    assert fleet.invoke("upgrade", "--wave", "1").returncode == 0
    repo = fleet.repo_path("r00")
    git(repo, "switch", "-q", "-c", "experiment")
    (repo / "dags" / "new.py").write_text("# an experiment\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=X", "-c", "user.email=x@example.invalid", "commit", "-qm", "wip")
    sha = git(repo, "rev-parse", "HEAD").strip()
    dep = fleet.deps[0]
    done = sim.run("deploy", dep.id, "--workspace-id", "ws-1", cwd=repo)
    assert done.returncode == 0, done.stderr
    code, doc = _verify_all(fleet)
    assert code == 5
    (row,) = doc["deployments"]
    assert row["drift"] == ["deployed_from_unmerged_commit"]
    assert sha[:12] in row["messages"][0] and "experiment" in row["messages"][0]


def test_an_unmerged_pr_of_the_active_rollout_is_drift(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {"mode": "pull-request"}})

    def opened() -> bool:
        if not fleet.journal_file.exists():
            return False
        with fleet.journal() as j:
            change = j.repo_change(1, "r00")
        return bool(change and change.pr_number)

    _kill_when(fleet, opened, "the PR recorded")  # waiting for a person to merge it
    code, doc = _verify_all(fleet)
    assert code == 5
    (row,) = doc["deployments"]
    assert row["drift"] == ["pending_pull_request"]
    assert "PR #1" in row["messages"][0]
    assert doc["summary"]["by_kind"]["pending_pull_request"] == 1
