"""`git.mode: direct`: the change is committed on the remote's default branch and pushed
before the deploy, which builds exactly that commit."""

from __future__ import annotations

from pathlib import Path

from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import TARGET, git, records
from upgrade.sim.testing import SimHandle

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
