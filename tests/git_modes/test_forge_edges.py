"""Where the real forges differ from a first guess (../shared/reference/forges-and-astro-edges.md,
tests/forge_schemas/README.md for the sources), through the production clients against the
forge simulator, which serves the documented shapes (validated by the ``forge`` fixture):

* GitHub Actions reports check runs, not commit statuses; the combined status is
  ``pending`` with no statuses at all; check runs are paged.
* GitLab's fast-forward merge leaves ``merge_commit_sha`` null; squash sets
  ``squash_commit_sha``; an MR without a pipeline may merge unless pipelines must succeed.
* GitHub's secondary rate limits answer 403 or 429 with a message, maybe ``Retry-After``;
  without one, wait at least a minute and back off exponentially, within a bound.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from simulators import FORGE_TOKEN, SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import TARGET, git, records
from upgrade.config.git import GitSettings
from upgrade.controlplane.forge import MAX_RATE_WAIT, PullRequest
from upgrade.controlplane.forge_github import GitHub, check_runs_verdict, combined_verdict
from upgrade.controlplane.forge_gitlab import GitLab, pipeline_verdict
from upgrade.controlplane.http import RetryPolicy
from upgrade.errors import ForgeAuthError, ForgeError

ENV = {"GITHUB_TOKEN": FORGE_TOKEN, "GITLAB_TOKEN": FORGE_TOKEN}
FAST = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.02, total=5, jitter=False)
PR = {"mode": "pull-request", "auto_merge": True}


# ------------------------------------------------------------------------- helpers

def _project(tmp_path: Path, forge: ForgeServer, name: str = "acme/app") -> tuple[Path, str]:
    """A bare repository with main and a branch one commit ahead, served as ``name``."""
    bare = tmp_path / "remote.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    git(work, "push", "-q", str(bare), "main")
    git(work, "switch", "-qc", "topic")
    (work / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    git(work, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qam", "two")
    git(work, "push", "-q", str(bare), "topic")
    forge.add_project(name, bare)
    return bare, git(work, "rev-parse", "HEAD").strip()


def _fault(forge: ForgeServer, project: str, **faults: Any) -> None:
    req = urllib.request.Request(forge.url + "/_forge/faults", method="POST",
                                 data=json.dumps({"project": project, **faults}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).close()


def _github(forge: ForgeServer, **kw: Any) -> GitHub:
    return GitHub(GitSettings(mode="pull-request", forge="github", forge_url=forge.url),
                  "acme/app", env=ENV, policy=FAST, **kw)


def _gitlab(forge: ForgeServer) -> GitLab:
    return GitLab(GitSettings(mode="pull-request", forge="gitlab",
                              forge_url=forge.url + "/api/v4"), "acme/app", env=ENV, policy=FAST)


# ------------------------------------------------------------------- 1: GitHub checks

@pytest.mark.parametrize(("ci", "runs", "checks", "verdict"), [
    ("statuses", 1, "success", "success"),
    ("statuses", 1, "failure", "failure"),
    ("check_runs", 1, "success", "success"),        # Actions: no statuses, still green
    ("check_runs", 150, "success", "success"),      # two pages of check runs
    ("check_runs", 150, "timed_out", "failure"),    # the failing run is on page 2
    ("check_runs", 3, "action_required", "failure"),
    ("check_runs", 3, "cancelled", "failure"),
    ("check_runs", 3, "neutral", "success"),
    ("check_runs", 3, "skipped", "success"),
    ("check_runs", 2, "pending", "pending"),        # a run still in progress
    ("both", 2, "success", "success"),
    ("both", 2, "failure", "failure"),
    ("none", 1, "success", "pending"),              # nothing has reported yet
])
def test_github_checks_read_statuses_and_every_page_of_check_runs(
        tmp_path: Path, forge: ForgeServer, ci: str, runs: int, checks: str,
        verdict: str) -> None:
    _, head = _project(tmp_path, forge)
    _fault(forge, "acme/app", ci=ci, check_runs=runs, checks=checks)
    with _github(forge) as client:
        pr = client.create("topic", "main", "t", "b")
        assert pr.head_sha == head
        assert client.checks(pr) == verdict
    pages = [c for c in forge.state.calls if c.endswith("/check-runs")]
    assert len(pages) == (2 if runs > 100 else 1)


def test_check_run_conclusions_and_the_combination() -> None:
    def run(conclusion: str | None, status: str = "completed") -> dict[str, Any]:
        return {"status": status, "conclusion": conclusion}

    assert check_runs_verdict([]) is None
    assert check_runs_verdict([run("success"), run("neutral"), run("skipped")]) == "success"
    # stale: GitHub's mark on a run left incomplete for 14 days; it will not pass by waiting.
    for bad in ("failure", "cancelled", "timed_out", "action_required", "stale", "new-one"):
        assert check_runs_verdict([run("success"), run(bad)]) == "failure", bad
    assert check_runs_verdict([run(None, "queued"), run("success")]) == "pending"
    assert combined_verdict(None, None) == "pending"
    assert combined_verdict("success", None) == combined_verdict(None, "success") == "success"
    assert combined_verdict("success", "failure") == combined_verdict("pending", "failure") \
        == "failure"
    assert combined_verdict("success", "pending") == "pending"


def test_a_repo_whose_ci_is_github_actions_auto_merges(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {**PR, "merge_timeout": "30s"}})
    fleet.fault("r00", ci="check_runs", check_runs=3)
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [p["state"] for p in fleet.pulls("r00")] == ["merged"]
    assert records(fleet.journal_file)["r00-d0"].state == "verified"


# ------------------------------------------------------- 2, 3: GitLab merges and pipelines

@pytest.mark.parametrize(("method", "squash"), [("ff", False), ("ff", True), ("merge", True),
                                                ("rebase_merge", False), ("merge", False)])
def test_gitlab_merge_methods_give_the_commit_on_the_target_branch(
        tmp_path: Path, forge: ForgeServer, method: str, squash: bool) -> None:
    bare, head = _project(tmp_path, forge)
    _fault(forge, "acme/app", merge_method=method, squash=squash)
    with _gitlab(forge) as client:
        pr = client.create("topic", "main", "t", "b")
        done = client.merge(pr, "m")
        again = client.get(pr.number)
    main = git(bare, "rev-parse", "main").strip()
    assert done.outcome == "merged" and done.sha == main == again.merge_commit
    if method == "ff" and not squash:
        assert main == head  # fast-forward: the source's head, no merge commit


@pytest.mark.parametrize("method", ["ff", "squash"])
def test_gitlab_fast_forward_and_squash_merges_are_deployed(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer, method: str) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {**PR, "forge": "gitlab",
                                                          "merge_timeout": "30s"}})
    fleet.fault("r00", **({"merge_method": "ff"} if method == "ff" else {"squash": True,
                                                                          "merge_method": "ff"}))
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    main = fleet.remote_rev("r00")
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state == "verified" and row.deployed_commit == main
    with fleet.journal() as j:
        (change,) = j.repo_changes()
    assert change.merge_commit == main and TARGET in fleet.remote_text("r00")
    (pull,) = fleet.pulls("r00")
    assert pull["merge_commit"] is None  # GitLab's merge_commit_sha stayed null
    assert (pull["squash_commit"] == main) == (method == "squash")


def test_gitlab_mr_without_a_pipeline_merges_where_the_project_allows_it(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {
        "r00": {**PR, "forge": "gitlab", "merge_timeout": "30s"},
        "r01": {**PR, "forge": "gitlab", "merge_timeout": "2s"}})
    fleet.fault("r00", pipeline="none")
    fleet.fault("r01", pipeline="none", pipeline_required=True)
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 4, out.stdout + out.stderr
    rows = records(fleet.journal_file)
    assert rows["r00-d0"].state == "verified"
    assert [p["state"] for p in fleet.pulls("r00")] == ["merged"]
    assert "was not merged within" in rows["r01-d0"].error  # ci_must_pass: GitLab says wait
    assert [p["state"] for p in fleet.pulls("r01")] == ["open"]


def test_gitlab_pipeline_verdicts() -> None:
    def mr(status: str | None, detailed: str | None = "mergeable", **kw: Any) -> dict:
        pipeline = None if status is None else {"status": status}
        return {"head_pipeline": pipeline, "detailed_merge_status": detailed, **kw}

    assert pipeline_verdict(mr("success", "not_approved")) == "success"
    assert pipeline_verdict(mr("failed")) == pipeline_verdict(mr("canceled")) == "failure"
    assert pipeline_verdict(mr("running")) == pipeline_verdict(mr("created")) == "pending"
    assert pipeline_verdict(mr(None)) == "success"  # pipeline_allows_merge?
    assert pipeline_verdict(mr("skipped")) == pipeline_verdict(mr("manual")) == "success"
    assert pipeline_verdict(mr(None, "ci_must_pass")) == "pending"
    assert pipeline_verdict(mr(None, "not_approved")) == "pending"
    assert pipeline_verdict(mr(None, None, merge_status="can_be_merged")) == "success"


# ----------------------------------------------------------- 4: secondary rate limits

class Sleeper:
    """What the client was told to wait, without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize(("status", "retry_after", "waits"), [
    (403, None, [60.0]),    # no header: at least a minute
    (429, None, [60.0]),
    (403, 7, [7.0]),        # Retry-After says how long
])
def test_a_secondary_rate_limit_is_waited_out_not_read_as_a_refused_token(
        tmp_path: Path, forge: ForgeServer, status: int, retry_after: int | None,
        waits: list[float]) -> None:
    _project(tmp_path, forge)
    _fault(forge, "acme/app", secondary_limit=1, secondary_status=status,
           secondary_retry_after=retry_after)
    sleeper = Sleeper()
    with _github(forge, sleep=sleeper) as client:
        assert client.find_open("topic", "main") is None
    assert sleeper.waits == waits
    asked = [c for c in forge.state.calls if not c.startswith("POST /_forge/")]
    assert asked == ["GET /repos/acme/app/pulls"] * 2


def test_repeated_secondary_limits_back_off_exponentially_and_give_up_bounded(
        tmp_path: Path, forge: ForgeServer) -> None:
    _project(tmp_path, forge)
    _fault(forge, "acme/app", secondary_limit=10)
    sleeper = Sleeper()
    with _github(forge, sleep=sleeper) as client, pytest.raises(ForgeError) as caught:
        client.create("topic", "main", "t", "b")
    assert not isinstance(caught.value, ForgeAuthError)
    assert sleeper.waits == [60.0, 120.0, 240.0] and sum(sleeper.waits) <= MAX_RATE_WAIT
    assert "secondary rate limit" in str(caught.value) and "gave up" in str(caught.value)
    assert caught.value.exit_code == 7
    assert forge.state.projects["acme/app"].pulls == []


def test_a_spent_quota_waits_until_its_reset(tmp_path: Path, forge: ForgeServer) -> None:
    _project(tmp_path, forge)
    _fault(forge, "acme/app", rate_limit=1, rate_limit_reset=1_000_030)
    sleeper = Sleeper()
    with _github(forge, sleep=sleeper, clock=lambda: 1_000_000.0) as client:
        pr = PullRequest(1, "u", "open", "topic", "0" * 40)
        assert client.checks(pr) == "success"
    assert sleeper.waits == [31.0]  # until the reset, and a second more


def test_a_403_that_is_no_rate_limit_still_names_the_token(
        tmp_path: Path, forge: ForgeServer) -> None:
    _project(tmp_path, forge)
    _fault(forge, "acme/app", unauthorized=True)
    with _github(forge, sleep=Sleeper()) as client, \
            pytest.raises(ForgeAuthError, match=r"refused the token in \$GITHUB_TOKEN"):
        client.find_open("topic", "main")
