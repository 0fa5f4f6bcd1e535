"""`git.mode: direct`: the change is committed on the remote's default branch and pushed
before the deploy, which builds exactly that commit."""

from __future__ import annotations

from pathlib import Path

from simulators import SimHandle

from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import TARGET, git, records, run_step

DIRECT = {"mode": "direct"}


def test_direct_pushes_to_main_then_deploys_that_commit(tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": DIRECT})
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert TARGET in fleet.remote_text("r00")
    pushed = fleet.remote_rev("r00")
    repo = fleet.repo_path("r00")
    assert git(repo, "rev-parse", "HEAD").strip() == pushed
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state == "verified" and row.deployed_commit == pushed
    with fleet.journal() as j:
        (change,) = j.repo_changes()
    assert change.mode == "direct" and change.pushed_commit == pushed and change.branch == "main"
    # The astro CLI sent the pushed commit with the deploy.
    deploys = fleet.sim_dep("r00-d0")["deploys"]
    assert deploys[-1]["git"]["commitSha"] == pushed
    assert deploys[-1]["git"]["branch"] == "main"
    # The commit step's title says what it does in this mode (not "on a branch").
    titles = [ln for ln in out.stderr.splitlines() if "  r00-d0: Commit" in ln]
    assert titles and all(t.endswith("  r00-d0: Commit the change (the default branch, pushed: "
                                      "git.mode direct)") for t in titles), out.stderr


def test_a_commit_that_is_not_on_the_remote_is_never_deployed(
        tmp_path: Path, sim: SimHandle) -> None:
    # A repo step after the push leaves HEAD on a local commit the remote does not have.
    local_commit = run_step(["git", "-c", "user.name=X", "-c", "user.email=x@example.invalid",
                             "commit", "-q", "--allow-empty", "-m", "local only"],
                            name="A local commit")
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": DIRECT}, extra_steps=local_commit)
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 4, out.stdout + out.stderr
    head = git(fleet.repo_path("r00"), "rev-parse", "HEAD").strip()
    row = records(fleet.journal_file)["r00-d0"]
    assert row.error == (f"r00: refusing to deploy commit {head[:12]}: it is not on "
                         "origin/main.")
    assert (row.state, row.failed_from, row.deploys) == ("failed", "tested", 0)
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0
