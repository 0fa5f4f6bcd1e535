"""The kill test: a 100-Deployment wave SIGKILLed at random moments, resumed each time.

Invariant 4 (durable): whatever the moment of the kill, rerunning the same command ends
with every Deployment verified, no deploy unrecorded (each deploy the simulator saw was
counted in the journal before it started), at most one extra deploy per Deployment per
kill, one commit per repo, and every dead run's lock taken over with a note.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
from simulators import SimHandle

from tests.rollout.facts import incomplete_facts
from tests.rollout.helpers import (
    TARGET,
    GenFleet,
    git,
    lock_holder_pid,
    make_fleet,
    records,
    wait_for,
)

SEED = 20261125
KILLS = 12


def _states(fleet: GenFleet) -> dict[str, int]:
    """How many Deployments are in each journal state ({} before a rollout is recorded)."""
    if not fleet.journal_file.exists():
        return {}
    try:
        return dict(Counter(r.state for r in records(fleet.journal_file).values()))
    except AssertionError:  # no rollout recorded yet
        return {}


def _deploys(fleet: GenFleet) -> Counter[str]:
    """Deploys the journal started per Deployment, over every rollout.

    A run killed after it completed the rollout leaves the next run to start a new one
    (every Deployment a no-op there), so a single rollout's rows do not hold them all.
    """
    deploys: Counter[str] = Counter()
    with fleet.journal() as journal:
        for rollout in journal.rollouts():
            deploys.update({r.name: r.deploys for r in journal.deployments(rollout.id)})
    return deploys


def _journal_agrees_with_astro(fleet: GenFleet) -> None:
    """Right after a kill: what the journal settled is what Astro shows (invariant 4)."""
    if not _states(fleet):
        return
    rows, deploys = records(fleet.journal_file), _deploys(fleet)
    astro = {d["name"]: d for d in fleet.sim.state()["deployments"]}
    for name, row in rows.items():
        seen = astro[name]
        # No deploy reached Astro that the journal had not counted before it started.
        assert len(seen["deploy_attempts"]) <= deploys[name], (name, row.state)
        if row.state in ("deployed", "verified"):
            assert seen["runtime_version"] == TARGET, (name, row.state, seen["runtime_version"])
        if row.state == "verified":
            assert seen["status"] == "HEALTHY", name


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_wave_killed_at_random_moments_resumes_to_exactly_the_right_end(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=20, per_repo=5, wave={"parallel": 10},
                       runner_parallel=10)
    rng = random.Random(SEED)
    # Kill points spread over the run: each kill waits until the journal shows a random
    # number of Deployments verified (sorted, so the kills walk through the wave), then a
    # random fraction of a second more, landing in whatever step is in flight.
    points = sorted(rng.randrange(0, 96) for _ in range(KILLS))
    killed: list[int] = []
    progress: list[dict[str, int]] = []  # journal states at each kill (reported)
    for point in points:
        proc = fleet.start("upgrade", "--wave", "1")
        try:
            # Kill only once this run holds the lock, so each kill leaves a lock to take over.
            wait_for(lambda p=proc: lock_holder_pid(fleet.lock_file) == p.pid or p.poll() is not None,
                     what="the run to take the lock")
            wait_for(lambda p=proc, n=point: _states(fleet).get("verified", 0) >= n or p.poll() is not None,
                     timeout=60, what=f"{point} Deployments verified")
            time.sleep(rng.uniform(0, 0.5))
            if proc.poll() is not None:
                out, err = proc.communicate()
                assert proc.returncode == 0, out + err  # finished before this kill point
                break
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, out + err
        killed.append(proc.pid)
        progress.append(_states(fleet))
        _journal_agrees_with_astro(fleet)
    assert len(killed) >= 10, progress
    assert not any("failed" in p for p in progress), progress

    final = fleet.invoke("upgrade", "--wave", "1", timeout=180)

    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "wave 1: PASSED" in final.stdout
    rows = records(fleet.journal_file)
    assert len(rows) == 100 and {r.state for r in rows.values()} == {"verified"}
    # A run killed after it completed the rollout leaves the next one to start a new
    # rollout (every Deployment a no-op): count each Deployment's deploys over all of them.
    deploys = _deploys(fleet)
    most = 0
    for dep in fleet.deps:
        state = fleet.sim_dep(dep)
        # The journal and Astro agree: verified there, at the target and healthy here.
        assert (state["runtime_version"], state["status"]) == (TARGET, "HEALTHY"), dep.name
        assert state["deploy_count"] >= 1
        # Every deploy that reached Astro was recorded before it started...
        attempts = len(state["deploy_attempts"])
        assert attempts <= deploys[dep.name], (dep.name, attempts, deploys[dep.name])
        # ...and a kill costs at most one extra deploy of a Deployment.
        assert deploys[dep.name] <= 1 + len(killed), dep.name
        most = max(most, deploys[dep.name])
    with fleet.journal() as journal:
        marks = {k: str(v) for k, v in journal.high_water().items()}
        takeovers = [e.message or "" for e in journal.events(None) if e.kind == "lock_taken_over"]
        # Not only nothing done twice: nothing forgotten either (tests/rollout/facts.py).
        incomplete = {r.id: incomplete_facts(journal, {}, r.id) for r in journal.rollouts()}
    assert incomplete == {r: {} for r in incomplete}
    assert marks == {d.id: TARGET for d in fleet.deps}
    # Every dead run's lock was taken over by the next run, which says whose it was when it
    # writes: a run killed while still deciding wrote nothing (its takeover note included),
    # and the run after it names it instead.
    named = [pid for note in takeovers for pid in killed if f"pid {pid}," in note]
    assert len(named) == len(takeovers) and named == [p for p in killed if p in named]
    assert named[-1] == killed[-1]  # the final run took over from the last one killed
    assert all("that process is gone (killed or crashed)" in note for note in takeovers)
    # Repo steps were not repeated unsafely: one commit per repo, clean work trees.
    for r in range(20):
        path = fleet.repo_path(f"r{r:02d}")
        branch = f"runtime-upgrade/{TARGET}"
        assert git(path, "rev-list", "--count", f"main..{branch}").strip() == "1"
        assert git(path, "status", "--porcelain") == ""
    print(f"kill points (verified >=): {points}; states at each kill: {progress}; most deploys of one "
          f"Deployment: {most}; total journal deploys: {sum(deploys.values())}")
