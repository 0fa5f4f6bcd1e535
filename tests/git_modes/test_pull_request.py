"""`git.mode: pull-request`: push a branch, open (or reuse) the PR through the forge, wait
until it is merged (auto_merge on green checks), then deploy the merge commit (cli) or wait
for CI to deploy it (ci)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import TARGET, git, records

BRANCH = f"runtime-upgrade/{TARGET}"


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_auto_merge_then_cli_deploy_of_the_merge_commit(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer, kind: str) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {
        "mode": "pull-request", "forge": kind, "auto_merge": True, "deploy": "cli"}})
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    (pull,) = fleet.pulls("r00")
    assert pull["state"] == "merged" and pull["branch"] == BRANCH and pull["base"] == "main"
    assert pull["title"] == f"Upgrade Astro Runtime 12.1.0 → {TARGET} (r00)"
    assert "12.4" in pull["body"] and "```diff" in pull["body"]
    merge = fleet.remote_rev("r00")
    assert pull["merge_commit"] == merge and TARGET in fleet.remote_text("r00")
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state == "verified" and row.deployed_commit == merge
    with fleet.journal() as j:
        (change,) = j.repo_changes()
    assert (change.pr_number, change.merge_commit, change.branch) == (1, merge, BRANCH)
    assert change.pr_url.endswith("/1")
    assert fleet.sim_dep("r00-d0")["deploys"][-1]["git"]["commitSha"] == merge
    assert git(fleet.repo_path("r00"), "rev-parse", "HEAD").strip() == merge
    status = fleet.invoke("status")
    assert f"r00 (pull-request): PR #1 {change.pr_url}, merged as {merge[:12]}" in status.stdout


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_deploy_ci_waits_for_the_deploy_action_to_deploy_the_merge_commit(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer, kind: str) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {
        "mode": "pull-request", "forge": kind, "auto_merge": True, "deploy": "ci",
        "ci_timeout": "30s"}}, per_repo=2)
    if kind == "gitlab":  # a fast-forward project: the commit CI deploys is the branch's own
        fleet.fault("r00", merge_method="ff")
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    merge = fleet.remote_rev("r00")
    rows = records(fleet.journal_file)
    for name in ("r00-d0", "r00-d1"):
        assert rows[name].state == "verified" and rows[name].deployed_commit == merge
        assert rows[name].deploys == 0  # the tool deployed nothing: CI did
        (deploy,) = fleet.sim_dep(name)["deploys"]
        assert deploy["git"]["commitSha"] == merge
        assert deploy["git"]["provider"] == "GENERIC"
        assert deploy["git"]["branch"] == "HEAD"  # CI's detached checkout


def test_an_open_pr_for_the_branch_is_reused(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {
        "mode": "pull-request", "auto_merge": True}})
    repo = fleet.repo_path("r00")
    git(repo, "switch", "-q", "-c", BRANCH)
    git(repo, "push", "-q", "origin", BRANCH)
    git(repo, "switch", "-q", "main")
    # A person opened a PR for the branch by hand.
    req = urllib.request.Request(
        forge.url + "/repos/acme/r00/pulls", method="POST",
        data=json.dumps({"title": "by hand", "head": BRANCH, "base": "main"}).encode(),
        headers={"Authorization": f"Bearer {fleet.env()['GITHUB_TOKEN']}"})
    urllib.request.urlopen(req).close()
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    (pull,) = fleet.pulls("r00")
    assert pull["title"] == "by hand" and pull["state"] == "merged"
