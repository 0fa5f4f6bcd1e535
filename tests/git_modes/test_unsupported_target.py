"""A target Astro itself refuses as unsupported (a bogus version in a replaced feed, say)
stops the rollout at the first Deployment, and every commit the wave wrote but never
deployed is reported with the exact command that takes it back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from simulators import SimHandle

from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import TARGET, git, make_fleet, records

CANARY = {"batch": [1, "100%"], "parallel": 4}


def _refuse_the_target(sim: SimHandle) -> None:
    sim.configure(runtime_releases=["12.1.0", "12.2.0", "12.3.0"])  # the target is not one


def test_an_unsupported_target_stops_at_the_canary_and_names_the_local_branch_to_drop(
    tmp_path: Path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=4, wave=CANARY)
    _refuse_the_target(sim)

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 4, out.stdout + out.stderr
    assert "Astro does not support the rollout's target" in out.stderr
    assert "--skip-gate" not in out.stderr
    assert "resume with" not in out.stderr  # the same command would be refused again
    rows = records(fleet.journal_file)
    # Only the canary was tried: the three others never started.
    assert sorted(r.state for r in rows.values()) == ["failed", "pending", "pending", "pending"]
    (canary,) = [name for name, r in rows.items() if r.state == "failed"]
    repo = rows[canary].repo
    path = fleet.repo_path(repo)
    branch = f"runtime-upgrade/{TARGET}"
    line = (f"{repo}: nothing was pushed; `git -C {path} checkout - && git -C {path} branch -D "
            f"{branch}`")
    assert line in out.stderr
    # The command it prints really takes the change back.
    subprocess.run(line.split("`")[1], shell=True, check=True, cwd=tmp_path)
    assert git(path, "branch", "--list", branch) == ""
    assert TARGET not in (path / "Dockerfile").read_text()
    assert all(not fleet.sim_dep(d)["deploy_attempts"] or d.repo == repo for d in fleet.deps)


def test_a_pushed_commit_astro_refuses_is_named_with_its_revert(
    tmp_path: Path, sim: SimHandle
) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"},
                                                 "r01": {"mode": "direct"}}, wave=CANARY)
    _refuse_the_target(sim)

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 4, out.stdout + out.stderr
    pushed = fleet.remote_rev("r00")
    assert TARGET in fleet.remote_text("r00")  # direct mode pushed before the deploy
    path = fleet.repo_path("r00")
    line = (f"r00: {pushed[:12]} was pushed to main; `git -C {path} revert --no-edit {pushed} "
            f"&& git -C {path} push origin HEAD:main`")
    assert line in out.stderr
    assert TARGET not in fleet.remote_text("r01")  # the second repo was never touched
    subprocess.run(line.split("`")[1], shell=True, check=True, cwd=tmp_path)
    assert TARGET not in fleet.remote_text("r00")
    with fleet.journal() as journal:
        (event,) = journal.events(None, kind="never_deployed")
    assert event.data["undo"] == [line]
