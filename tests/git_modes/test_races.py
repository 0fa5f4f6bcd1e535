"""`git.mode: direct` when the remote moves under the wave: a concurrent push is a race (fetch,
rebase or re-render, push again, bounded), never "the branch is protected"; a refused push
or re-render leaves the local branch where the run found it, and once the remote is fixed
the same command retries the Deployment.

The races are real: the bare remote's ``pre-receive`` hook pushes another commit to ``main``
from a second clone while our push is being received, so git itself answers ours with
``cannot lock ref 'refs/heads/main': is at X but expected Y`` and ``[remote rejected]
(failed to update ref)``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from simulators import SimHandle

from tests.git_modes.helpers import GitFleet, make_git_fleet
from tests.git_modes.test_faults import UPSTREAM, _playbook_with_upstream_push
from tests.rollout.facts import incomplete_facts
from tests.rollout.helpers import TARGET, git, records

DIRECT = {"r00": {"mode": "direct"}}
RACER = """#!/bin/sh
# While our push is received, another one lands on main (the nested push skips this hook).
[ -n "$RACE_NESTED" ] && exit 0
left=$(cat "{counter}"); [ "$left" -gt 0 ] || exit 0
echo $((left - 1)) > "{counter}"
cd "{clone}" && env -i PATH="$PATH" HOME="$HOME" RACE_NESTED=1 sh -c '
  git pull -q --rebase origin main && {edit} &&
  git -c user.name=Someone -c user.email=someone@example.invalid commit -qam "concurrent" &&
  git push -q origin HEAD:main' >&2
exit 0
"""


def _racing_remote(fleet: GitFleet, races: int, edit: str) -> Path:
    """Make the next ``races`` pushes to r00's remote lose a race to a concurrent push that
    runs ``edit`` (shell, in a clone) first; the file counting the races left."""
    bare = fleet.remotes["r00"]
    clone = fleet.root / "someone-else"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    counter = fleet.root / "races-left"
    counter.write_text(str(races))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(RACER.format(counter=counter, clone=clone, edit=edit))
    hook.chmod(0o755)
    return counter


def _upgrade(fleet: GitFleet) -> subprocess.CompletedProcess[str]:
    return fleet.invoke("upgrade", "--wave", "1")


def test_a_push_that_loses_a_race_is_rebased_and_pushed_again(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, DIRECT)
    counter = _racing_remote(fleet, 1, "echo notes >> NOTES.md && git add NOTES.md")
    out = _upgrade(fleet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert counter.read_text().strip() == "0"  # the race happened
    assert "protected" not in out.stdout + out.stderr
    head = fleet.remote_rev("r00")
    assert TARGET in fleet.remote_text("r00") and "notes" in fleet.remote_text("r00",
                                                                               path="NOTES.md")
    with fleet.journal() as j:
        (change,) = j.repo_changes()
        assert "rebased onto origin/main" in (j.events(None, kind="repo_change")[-1].message or "")
        assert incomplete_facts(j, {"r00": "direct"}) == {}
    assert change.pushed_commit == head == records(fleet.journal_file)["r00-d0"].deployed_commit


def test_a_remote_that_keeps_moving_is_tried_twice_then_left_as_found_and_resumed(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, DIRECT)
    repo = fleet.repo_path("r00")
    found = git(repo, "rev-parse", "HEAD").strip()
    # Both of our pushes lose, each time to a push that changes the Dockerfile itself.
    counter = _racing_remote(fleet, 2, 'printf "LABEL n=%s\\n" $(date +%s%N) >> Dockerfile')
    out = _upgrade(fleet)
    assert counter.read_text().strip() == "0"
    assert out.returncode == 4, out.stdout + out.stderr
    error = records(fleet.journal_file)["r00-d0"].error or ""
    assert "kept moving" in error and "protected" not in error, error
    # Nothing of ours is left on the branch: where the wave found it, clean.
    assert git(repo, "rev-parse", "HEAD").strip() == found
    assert git(repo, "status", "--porcelain").strip() == ""
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0

    again = _upgrade(fleet)  # the remote is quiet now: the same command retries

    assert again.returncode == 0, again.stdout + again.stderr
    text = fleet.remote_text("r00")
    assert TARGET in text and text.count("LABEL n=") == 2  # both concurrent changes kept
    row = records(fleet.journal_file)["r00-d0"]
    assert row.state == "verified" and row.deployed_commit == fleet.remote_rev("r00")
    with fleet.journal() as j:
        assert incomplete_facts(j, {"r00": "direct"}) == {}


FROM_GONE = "echo 'RUN echo this file lost its FROM' > Dockerfile"
ABOVE_TARGET = "echo 'FROM quay.io/astronomer/astro-runtime:13.0.0' > Dockerfile"


@pytest.mark.slow
@pytest.mark.parametrize("edit", [FROM_GONE, ABOVE_TARGET], ids=["no-from", "above-target"])
def test_a_re_render_refused_after_the_remote_moved_is_retried_once_the_remote_is_fixed(
        tmp_path: Path, sim: SimHandle, edit: str) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, DIRECT)
    repo = fleet.repo_path("r00")
    playbook = fleet.root / "playbooks" / "upgrade.yaml"
    plain = playbook.read_text()
    _playbook_with_upstream_push(fleet, edit)  # between our fetch and our push
    first = _upgrade(fleet)
    assert first.returncode == 4, first.stdout + first.stderr
    assert "cannot be re-rendered" in records(fleet.journal_file)["r00-d0"].error
    found = git(repo, "rev-parse", "HEAD").strip()
    playbook.write_text(plain)

    # Run again before anyone fixed the remote: the refusal, said again; never "push them".
    second = _upgrade(fleet)
    assert second.returncode == 4, second.stdout + second.stderr
    error = records(fleet.journal_file)["r00-d0"].error or ""
    assert "cannot re-render Dockerfile as it is on origin/main" in error, error
    assert "Push them" not in second.stdout + second.stderr
    assert git(repo, "rev-parse", "HEAD").strip() == found  # left as found, each time
    assert git(repo, "status", "--porcelain").strip() == ""
    plan = fleet.invoke("plan", "--wave", "1")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # the plan does not refuse it

    fixer = fleet.root / "fix.sh"  # someone fixes the Dockerfile on origin/main
    fixer.write_text(UPSTREAM.format(remote=fleet.remotes["r00"].as_uri(), edit=(
        "echo 'FROM quay.io/astronomer/astro-runtime:12.1.0' > Dockerfile")))
    subprocess.run(["sh", str(fixer)], check=True, capture_output=True)
    third = _upgrade(fleet)

    assert third.returncode == 0, third.stdout + third.stderr
    row = records(fleet.journal_file)["r00-d0"]
    assert (row.state, row.error) == ("verified", None)
    assert row.deployed_commit == fleet.remote_rev("r00") and TARGET in fleet.remote_text("r00")
    with fleet.journal() as j:
        assert incomplete_facts(j, {"r00": "direct"}) == {}
