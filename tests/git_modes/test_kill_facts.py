"""Killed runs resume with every fact recovered, never assumed: after `kill -9`, what the run
did not see happen (a person merged the PR, CI deployed it, a deploy finished) is read back
from the system that knows it (the forge's merge commit, Astro's deploy record) and
journalled with its source before the Deployment may pass. Each test asserts the journal
is complete (tests/rollout/facts.py), not only that nothing was done twice.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import GitFleet, _post, make_git_fleet
from tests.git_modes.test_faults import _kill_when
from tests.rollout.facts import incomplete_facts
from tests.rollout.helpers import records, wait_for
from upgrade.errors import UpgradeError
from upgrade.journal.records import RepoChange

PR_CI = {"mode": "pull-request", "auto_merge": True, "deploy": "ci", "ci_timeout": "60s"}
BRANCH = "runtime-upgrade/12.4.0"


def _change(fleet: GitFleet) -> RepoChange | None:
    """What the journal holds of r00's change (None before the journal or the change)."""
    if not fleet.journal_file.exists():
        return None
    try:
        with fleet.journal() as j:
            return j.repo_change(1, "r00")
    except UpgradeError:  # the journal is being created: not ours to read yet
        return None


def _moves(fleet: GitFleet, name: str) -> list[tuple[str | None, str | None]]:
    dep = fleet.dep(name)
    with fleet.journal() as j:
        return [(e.from_state, e.to_state) for e in j.events(None, kind="transition")
                if e.deployment_id == dep.id]


def test_kill_while_waiting_for_checks_then_a_person_merges_and_ci_deploys(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR_CI}, per_repo=2, ci_delay=0.1)
    fleet.fault("r00", checks="pending")  # the checks never finish: the run waits

    _kill_when(fleet, lambda: (c := _change(fleet)) is not None and c.pr_number is not None,
               "the PR opened, the run waiting for its checks")
    _post(forge.url + "/_forge/merge", {"project": "acme/r00", "number": 1})  # a person
    merge = fleet.remote_rev("r00")
    wait_for(lambda: all(any(d["status"] == "DEPLOYED" for d in fleet.deploy_records(dep))
                         for dep in fleet.deps), timeout=120, what="CI's deploys")

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    assert len(fleet.pulls("r00")) == 1
    with fleet.journal() as j:
        (change,) = j.repo_changes()
        assert incomplete_facts(j, {"r00": "pull-request"}) == {}
        merged = [e for e in j.events(None, kind="repo_change") if e.data.get("merge_commit")]
    assert change.merge_commit == merge
    assert [e.data["source"] for e in merged] == ["forge"]
    rows = records(fleet.journal_file)
    for dep in fleet.deps:
        assert rows[dep.name].deployed_commit == merge and rows[dep.name].deploys == 0
        assert [d["git"]["commitSha"] for d in fleet.deploy_records(dep)] == [merge]  # CI's
        assert _moves(fleet, dep.name) == [("pending", "rendered"), ("rendered", "committed"),
                                           ("committed", "deploying"), ("deploying", "deployed"),
                                           ("deployed", "verified")]


def test_a_pr_merged_by_hand_after_the_kill_is_found_not_opened_again(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {"mode": "pull-request",
                                                          "auto_merge": True}})
    fleet.fault("r00", slow=5)  # the PR lookup hangs: the kill lands before one is opened

    _kill_when(fleet, lambda: (c := _change(fleet)) is not None and c.pushed_commit is not None,
               "the branch pushed")
    fleet.fault("r00", slow=0)
    # Meanwhile a person opens the PR for the branch by hand, and merges it.
    req = urllib.request.Request(
        forge.url + "/repos/acme/r00/pulls", method="POST",
        data=json.dumps({"title": "by hand", "head": BRANCH, "base": "main"}).encode(),
        headers={"Authorization": f"Bearer {fleet.env()['GITHUB_TOKEN']}"})
    urllib.request.urlopen(req).close()
    _post(forge.url + "/_forge/merge", {"project": "acme/r00", "number": 1})
    merge = fleet.remote_rev("r00")

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    assert [(p["number"], p["state"]) for p in fleet.pulls("r00")] == [(1, "merged")]
    with fleet.journal() as j:
        (change,) = j.repo_changes()
        assert incomplete_facts(j, {"r00": "pull-request"}) == {}
    assert (change.pr_number, change.merge_commit) == (1, merge)
    assert records(fleet.journal_file)["r00-d0"].deployed_commit == merge
