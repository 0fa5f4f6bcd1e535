"""Faults that must end cleanly in git modes: each names what failed and leaves the journal
saying only what happened."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.cli.test_json_contracts import document
from tests.git_modes.helpers import TOKEN, GitFleet, make_git_fleet
from tests.rollout.helpers import START, TARGET, git, invoke, records, state_of, wait_for

PR = {"mode": "pull-request", "auto_merge": True}
BRANCH = f"runtime-upgrade/{TARGET}"


def _upgrade(fleet: GitFleet) -> subprocess.CompletedProcess[str]:
    return fleet.invoke("upgrade", "--wave", "1")


def test_pr_closed_without_merge_fails_that_deployment_naming_the_pr(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    fleet.fault("r00", close_unmerged=True)
    out = _upgrade(fleet)
    assert out.returncode == 4, out.stdout + out.stderr
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state == "failed" and "PR #1" in row.error and "closed without" in row.error
    assert "/acme/r00/pull/1" in row.error
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0


def test_failing_checks_or_a_conflict_are_not_merged(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR, "r01": PR})
    fleet.fault("r00", checks="failure")
    fleet.fault("r01", merge_conflict=True)
    out = _upgrade(fleet)
    assert out.returncode == 4, out.stdout + out.stderr
    rows = records(fleet.journal_file)
    assert "checks failed on PR #1" in rows["r00-d0"].error
    assert "PR #1" in rows["r01-d0"].error and "cannot be merged" in rows["r01-d0"].error
    assert "not mergeable" in rows["r01-d0"].error  # the forge's own words (405)
    assert [p["state"] for p in fleet.pulls("r00") + fleet.pulls("r01")] == ["open", "open"]


def _nothing_written(fleet: GitFleet, repo: str = "r00") -> None:
    """No journal, no branch pushed, no request opened, no deploy."""
    assert not fleet.journal_file.exists()
    assert git(fleet.remotes[repo], "branch", "--format=%(refname:short)").split() == ["main"]
    assert fleet.pulls(repo) == []
    assert fleet.sim_dep(f"{repo}-d0")["deploy_attempts"] == []


def test_a_refused_forge_token_is_found_before_anything_is_written(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    fleet.fault("r00", unauthorized=True)
    dry = fleet.invoke("upgrade", "--wave", "1", "--dry-run")
    out = _upgrade(fleet)
    assert (dry.returncode, out.returncode) == (7, 7), out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines()
             if "refused the token in $GITHUB_TOKEN for acme/r00 (401" in line]
    assert lines, out.stdout + out.stderr
    assert "wave 1 cannot start: 1 Deployment(s) blocked (nothing was changed)" in out.stderr
    assert fleet.env()["GITHUB_TOKEN"] not in out.stdout + out.stderr + dry.stdout
    _nothing_written(fleet)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_missing_forge_token_is_found_before_anything_is_written(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer, kind: str) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {**PR, "forge": kind,
                                                          "token_env": "ACME_FORGE_TOKEN"}})
    out = invoke(fleet.root, "upgrade", "--wave", "1", env=fleet.env())
    assert out.returncode == 7, out.stdout + out.stderr
    title = {"github": "GitHub", "gitlab": "GitLab"}[kind]
    assert f"  - r00-d0: {title} repo acme/r00: $ACME_FORGE_TOKEN is not set." in out.stderr
    _nothing_written(fleet)
    # Set, it runs.
    done = invoke(fleet.root, "upgrade", "--wave", "1",
                  env={**fleet.env(), "ACME_FORGE_TOKEN": TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p["state"] for p in fleet.pulls("r00")] == ["merged"]


def test_a_repository_the_token_cannot_see_is_found_before_anything_is_written(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    fleet.fault("r00", hidden=True)
    out = _upgrade(fleet)
    assert out.returncode == 7, out.stdout + out.stderr
    assert ("r00-d0: GitHub does not show acme/r00 to the token in $GITHUB_TOKEN (404: Not "
            "Found)") in out.stderr
    _nothing_written(fleet)


def test_a_token_refused_after_the_push_stops_the_run_and_the_rerun_opens_one_pr(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    # After the pre-flight: the token is revoked as the branch reaches the remote.
    revoke = ("import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request("
              "sys.argv[1], data=json.dumps({'project': 'acme/r00', 'unauthorized': True})"
              ".encode(), method='POST', headers={'Content-Type': 'application/json'})).close()")
    hook = fleet.remotes["r00"] / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nread old new ref\ncase $ref in refs/heads/runtime-upgrade/*) "
                    f"exec {shlex.quote(sys.executable)} -c {shlex.quote(revoke)} "
                    f"{shlex.quote(forge.url + '/_forge/faults')};; esac\n")
    hook.chmod(0o755)
    out = _upgrade(fleet)
    assert out.returncode == 7, out.stdout + out.stderr
    assert "refused the token in $GITHUB_TOKEN for acme/r00 (401" in out.stdout + out.stderr
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state != "failed" and row.error is None  # stopped, not failed
    with fleet.journal() as j:
        (change,) = j.repo_changes()
    assert change.pushed_commit and change.pr_number is None  # only what happened
    [rollout] = document(fleet.invoke("status", "--json"), "status")["rollouts"]
    [wave] = rollout["waves"]
    assert wave["status"] == "stopped", wave  # not "running": no run is
    assert "exit 7: GitHub refused the token in $GITHUB_TOKEN" in wave["status_reason"]

    fleet.fault("r00", unauthorized=False)
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    (pull,) = fleet.pulls("r00")
    assert pull["state"] == "merged"
    # The PR says what the branch changes, although the resumed run's checkout already
    # holds the rewrite.
    assert pull["title"] == f"Upgrade Astro Runtime {START} → {TARGET} (r00)"
    assert pull["body"].startswith(f"Upgrades Astro Runtime {START} → {TARGET} in `Dockerfile`.")
    assert (f"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -1 +1 @@\n"
            f"-FROM quay.io/astronomer/astro-runtime:{START}\n"
            f"+FROM quay.io/astronomer/astro-runtime:{TARGET}\n") in pull["body"]
    assert "already pins" not in pull["body"]


def test_429_with_retry_after_and_slow_answers_are_waited_out(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    fleet.fault("r00", rate_limit=2, retry_after=1, slow=0.2)
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [p["state"] for p in fleet.pulls("r00")] == ["merged"]


def test_forge_unreachable_is_found_before_anything_is_written(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed when the block ends: nobody listens there
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {**PR, "forge_url":
                                                           f"http://127.0.0.1:{dead}"}})
    out = _upgrade(fleet)
    assert out.returncode == 7, out.stdout + out.stderr
    assert "GitHub could not be reached for acme/r00" in out.stdout + out.stderr
    _nothing_written(fleet)
    _point_forge_at(fleet, forge.url)
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [p["state"] for p in fleet.pulls("r00")] == ["merged"]


def _point_forge_at(fleet: GitFleet, url: str) -> None:
    doc = yaml.safe_load(fleet.inventory.read_text())
    for spec in doc["repos"].values():
        spec["git"]["forge_url"] = url
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_ci_that_never_deploys_fails_within_the_time_out_and_counts_against_the_budget(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {
        **PR, "deploy": "ci", "ci_timeout": "1s"}}, ci_delay=30)
    out = _upgrade(fleet)
    assert out.returncode == 4, out.stdout + out.stderr
    row = records(fleet.journal_file)["r00-d0"]
    merge = fleet.remote_rev("r00")
    assert row.error == f"CI did not deploy {merge[:12]} to r00-d0 within {1 / 60:g} min."
    assert "budget" in out.stdout + out.stderr or "FAILED" in out.stdout or "failed" in out.stdout


def test_push_to_a_protected_branch_fails_suggesting_pull_request_mode(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    hook = fleet.remotes["r00"] / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/main.'"
                    " >&2\nexit 1\n")
    hook.chmod(0o755)
    before = fleet.remote_rev("r00")
    out = _upgrade(fleet)
    assert out.returncode == 4, out.stdout + out.stderr
    row = records(fleet.journal_file)["r00-d0"]
    assert "refused the push to main" in row.error and "git.mode: pull-request" in row.error
    assert "Protected branch" in row.error
    assert fleet.remote_rev("r00") == before
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0


UPSTREAM = """\
set -e
tmp=$(mktemp -d)
git clone -q "{remote}" "$tmp/c"
cd "$tmp/c"
{edit}
git -c user.name=Someone -c user.email=someone@example.invalid commit -qam "upstream change"
git push -q origin main
"""


def _playbook_with_upstream_push(fleet: GitFleet, edit: str) -> None:
    """A playbook whose repo step between render and commit pushes to origin/main, as a
    colleague would while the wave runs."""
    script = fleet.root / "upstream.sh"
    script.write_text(UPSTREAM.format(remote=fleet.remotes["r00"].as_uri(), edit=edit))
    playbook = fleet.root / "playbooks" / "upgrade.yaml"
    doc = yaml.safe_load(playbook.read_text())
    doc["steps"].insert(1, {"name": "Someone pushes", "run": {
        "argv": ["sh", str(script)], "timeout": 60}})
    playbook.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_default_branch_moved_with_the_dockerfile_changed_is_re_rendered_once(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    _playbook_with_upstream_push(fleet, "printf 'LABEL team=data\\n' >> Dockerfile")
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    text = fleet.remote_text("r00")
    assert TARGET in text and "LABEL team=data" in text
    assert "re-rendered" in "\n".join(e.message or "" for e in fleet.events())
    assert records(fleet.journal_file)["r00-d0"].deployed_commit == fleet.remote_rev("r00")


def test_default_branch_moved_elsewhere_is_rebased(tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    _playbook_with_upstream_push(fleet, "echo notes > NOTES.md && git add NOTES.md")
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert TARGET in fleet.remote_text("r00")
    assert fleet.remote_text("r00", path="NOTES.md") == "notes\n"


def test_a_dockerfile_that_cannot_be_re_rendered_fails_naming_file_and_commits(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}})
    before = fleet.remote_rev("r00")
    _playbook_with_upstream_push(fleet, "echo 'FROM python:3.12' > Dockerfile")
    out = _upgrade(fleet)
    assert out.returncode == 4, out.stdout + out.stderr
    after = fleet.remote_rev("r00")
    error = records(fleet.journal_file)["r00-d0"].error
    assert "Dockerfile changed on origin/main" in error
    assert before[:12] in error and after[:12] in error
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0


def _kill_when(fleet: GitFleet, condition, what: str) -> None:
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(condition, timeout=60, what=what)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()


def test_kill_between_push_and_pr_creation_resumes_with_one_push_and_one_pr(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": PR})
    git(fleet.remotes["r00"], "config", "core.logAllRefUpdates", "always")
    fleet.fault("r00", slow=5)  # the PR lookup hangs: the kill lands before it is opened

    def pushed() -> bool:
        with fleet.journal() as j:
            change = j.repo_change(1, "r00") if fleet.journal_file.exists() else None
        return bool(change and change.pushed_commit)

    _kill_when(fleet, lambda: fleet.journal_file.exists() and pushed(), "the push recorded")
    assert fleet.pulls("r00") == []
    fleet.fault("r00", slow=0)
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(fleet.pulls("r00")) == 1
    pushes = git(fleet.remotes["r00"], "reflog", "show", "--format=%H", BRANCH).split()
    assert len(pushes) == 1


def test_kill_between_merge_and_deploy_resumes_with_one_pr_and_one_deploy(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {**PR, "deploy": "ci"}}, ci_delay=4)
    _kill_when(fleet, lambda: state_of(fleet.journal_file, "r00-d0") == "deploying",
               "waiting for CI")
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(fleet.pulls("r00")) == 1
    assert len(fleet.sim_dep("r00-d0")["deploys"]) == 1
    assert records(fleet.journal_file)["r00-d0"].state == "verified"
