"""`status` says what a wave's runs left it at: running only while a run of it holds the
journal's lock; incomplete when its last run finished its --limit; stopped when its last
run ended with an error or was killed (a SIGKILL leaves no word: no run holds the lock)."""

from __future__ import annotations

import os
import signal

import pytest
from simulators import SimHandle

from tests.cli.test_json_contracts import document
from tests.rollout.helpers import deploy_children, kill_group, make_fleet, state_of, wait_for


def wave_1(fleet) -> dict:
    [rollout] = document(fleet.invoke("status", "--json"), "status")["rollouts"]
    return rollout["waves"][0]


@pytest.mark.slow
@pytest.mark.parametrize("journal", ["sqlite", "postgresql"])
def test_status_tells_a_running_wave_from_one_whose_run_died_or_left_work(
        tmp_path, sim: SimHandle, journal: str, request: pytest.FixtureRequest) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)

    def deploying() -> bool:
        return state_of(fleet.journal_file, "r01-d0") == "deploying"

    if journal == "postgresql":  # the lock is the run's database session's, not a file's
        from tests.team.helpers import states, use_postgres

        settings = use_postgres(fleet, request.getfixturevalue("pg_url"))

        def deploying() -> bool:
            return states(settings).get("r01-d0") == "deploying"
    slow = fleet.dep("r01-d0")
    sim.set_fault(slow.id, deploy_extra_seconds=20_000)  # a 20 s build: caught in it
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        children = wait_for(lambda: deploying() and deploy_children(proc.pid, slow.id),
                            what="r01-d0 deploying")
        running = wave_1(fleet)
        assert running["status"] == "running", running
        assert f"pid {proc.pid}," in running["status_reason"]
        assert "upgrade --wave 1" in running["status_reason"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    for child in children:
        kill_group(child)
    sim.clear_faults(slow.id)

    died = wave_1(fleet)
    assert died["status"] == "stopped", died
    assert "is gone without a word (killed or crashed)" in died["status_reason"]
    assert "`astro-fleet upgrade --wave 1` resumes it" in died["status_reason"]
    assert "stopped" in fleet.invoke("status").stdout

    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr
    left = wave_1(fleet)
    assert left["status"] == "incomplete", left
    assert "1 Deployment(s) of the wave not done yet: r01-d0" in left["status_reason"]

    done = fleet.invoke("upgrade", "--wave", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    passed = wave_1(fleet)
    assert (passed["status"], passed["status_reason"], passed["targets"]) == (
        "passed", None, ["12.4.0"])
