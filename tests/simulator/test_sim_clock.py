"""The clock a test drives: with the simulator's clock stopped, simulated time passes only
when the test says so, so nothing has to sleep and race it."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulators import SimHandle

from fleet_sim import lifecycle
from fleet_sim.errors import InputError
from tests.simulator.helpers import AF2, deploy, project


def test_a_stopped_clock_moves_only_when_the_test_moves_it(sim: SimHandle,
                                                           tmp_path: Path) -> None:
    # Real Astro's pace (time scale 1), and a build that would take 11 days of real sleep:
    # a stopped clock means astro-sim does not sleep at all (this test would time out).
    sim.configure(time_scale=1, deploy_seconds=1_000_000)
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    stopped = sim.freeze_clock()
    assert stopped["mode"] == "manual" and stopped["time_scale"] == 1.0
    out = deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1", "-f")
    assert out.returncode == 0, out.stdout + out.stderr
    assert sim.clock()["epoch"] == stopped["epoch"]  # the deploy took no simulated time
    dep = sim.deployment("dep-1")
    assert (dep["status"], dep["running_runtime_version"]) == ("DEPLOYING", "12.4.0")
    sim.advance(119)  # healthy_after_seconds is 120
    assert sim.deployment("dep-1")["status"] == "DEPLOYING"
    moved = sim.advance(1)
    assert moved["epoch"] == stopped["epoch"] + 120
    dep = sim.deployment("dep-1")
    assert (dep["status"], dep["running_runtime_version"]) == ("HEALTHY", "12.5.0")


def test_advance_is_in_simulated_seconds_and_the_clock_survives_reset_and_restart(sim: SimHandle
                                                                          ) -> None:
    start = sim.freeze_clock()
    moved = sim.advance(120)  # the fixture's time scale, 0.001: 0.12 s of clock time
    assert moved["epoch"] == pytest.approx(start["epoch"] + 0.12)
    sim.reset()  # forgets Deployments and faults, not the time
    sim.restart()
    assert sim.clock() == moved  # still stopped, at the same time
    running = lifecycle.clock(sim.url, mode="wall")
    assert running["mode"] == "wall" and running["epoch"] >= moved["epoch"]


@pytest.mark.parametrize(("body", "problem"), [
    ({"advance": -1}, "clock: advance: expected a number of seconds >= 0"),
    ({"advance": True}, "clock: advance: expected a number of seconds >= 0"),
    ({"mode": "sundial"}, "clock: mode: expected one of wall, manual"),
    ({"speed": 2}, "clock: expected"),
])
def test_the_clock_refuses_what_it_cannot_do(sim: SimHandle, body: dict, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        lifecycle.admin(sim.url, "POST", "/_sim/clock", body)
    assert sim.clock()["mode"] == "wall"
