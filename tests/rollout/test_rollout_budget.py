"""Failure budgets and batches (Ansible's serial and max_fail_percentage), through `invoke upgrade`.

Failures are injected with the simulator's `deploy_error` (it fails at finalize, in a
fraction of the time a healthy Deployment takes to deploy and verify, so a faulted
Deployment is always the first of its batch to finish).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from simulators import SimHandle

from tests.rollout.helpers import TARGET, GenFleet, log_lines, make_fleet

ERROR = {"deploy_error": "Internal server error: the image could not be rolled out"}


def _fail(fleet: GenFleet, sim: SimHandle, *names: str) -> None:
    for name in names:
        sim.set_fault(fleet.dep(name).id, **ERROR)


def _untouched(fleet: GenFleet, names: list[str]) -> None:
    """Never started: pending in the journal, no deploy ever reached Astro."""
    rows = fleet.records()
    attempts = fleet.attempts()
    for name in names:
        assert rows[name].state == "pending" and rows[name].deploys == 0, name
        assert attempts[name] == 0, name
        assert fleet.sim_dep(name)["runtime_version"] == "12.1.0"


def _names(fleet: GenFleet, *indexes: int) -> list[str]:
    return [fleet.deps[i].name for i in indexes]


@pytest.mark.parametrize("percentage", [25, None], ids=["25-percent", "no-budget"])
def test_one_failure_in_a_batch_of_four_does_not_trip_and_later_batches_run(
    tmp_path, sim: SimHandle, percentage: int | None
) -> None:
    wave = {"parallel": 4, "batch": 4}
    if percentage is not None:
        wave["max_fail_percentage"] = percentage
    fleet = make_fleet(tmp_path, sim, repos=8, wave=wave)
    _fail(fleet, sim, "r00-d0")

    out = fleet.invoke("upgrade", "--wave", "1")

    # 1 of 4 is 25%, not strictly more: the second batch still runs. The wave is halted
    # at its end all the same, because a Deployment failed.
    assert out.returncode == 4, out.stdout + out.stderr
    assert "budget tripped" not in out.stderr
    assert "wave 1: HALTED: 1 Deployment(s) failed: r00-d0" in out.stdout
    rows = fleet.records()
    assert rows.pop("r00-d0").state == "failed"
    assert {r.state for r in rows.values()} == {"verified"}
    assert "batch 2: 4 Deployments" in log_lines(out.stderr)


def test_two_failures_in_a_batch_of_four_trip_25_percent_and_stop_the_wave(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=8,
                       wave={"parallel": 4, "batch": 4, "max_fail_percentage": 25})
    _fail(fleet, sim, "r00-d0", "r01-d0")

    out = fleet.invoke("upgrade", "--wave", "1")

    budget = ("max_fail_percentage tripped: 2 of 4 Deployments in this batch failed (50%), "
              "more than the 25% allowed")
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"wave 1: HALTED: {budget}" in out.stdout
    assert f"budget tripped: {budget}; no new Deployment starts" in out.stderr
    rows = fleet.records()
    assert [rows[n].state for n in _names(fleet, 0, 1, 2, 3)] == [
        "failed", "failed", "verified", "verified"]  # in flight when it tripped: finished
    _untouched(fleet, _names(fleet, 4, 5, 6, 7))
    assert not any(line.startswith("batch 2") for line in log_lines(out.stderr))
    with fleet.journal() as journal:
        wave = journal.wave(1, 1)
    assert wave is not None and (wave.status, wave.halt_reason) == ("halted", budget)
    assert wave.budget["max_fail_percentage"] == 25 and wave.budget["batch"] == [4]


def test_max_failures_counts_across_batches(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=6, wave={"parallel": 2, "batch": 2, "max_failures": 1})
    _fail(fleet, sim, "r00-d0", "r02-d0")  # one in batch 1, one in batch 2

    out = fleet.invoke("upgrade", "--wave", "1")

    budget = "max_failures tripped: 2 Deployments failed in this wave, more than the 1 allowed"
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"wave 1: HALTED: {budget}" in out.stdout
    rows = fleet.records()
    assert [rows[n].state for n in _names(fleet, 0, 1, 2, 3)] == [
        "failed", "verified", "failed", "verified"]
    _untouched(fleet, _names(fleet, 4, 5))


@pytest.mark.parametrize("wave", [{}, {"max_fail_percentage": 100}], ids=["no-budget", "100-percent"])
def test_a_batch_where_every_deployment_failed_stops_the_wave(
    tmp_path, sim: SimHandle, wave: dict
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=4, wave={"parallel": 4, "batch": [1, "100%"], **wave})
    _fail(fleet, sim, "r00-d0")  # the canary

    out = fleet.invoke("upgrade", "--wave", "1")

    reason = "every Deployment of the batch failed (1 of 1)"
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"wave 1: HALTED: {reason}" in out.stdout
    assert fleet.records()["r00-d0"].state == "failed"
    _untouched(fleet, _names(fleet, 1, 2, 3))


def test_a_tripped_budget_starts_nothing_more_even_inside_the_batch(
    tmp_path, sim: SimHandle
) -> None:
    # One batch of 6, two at a time: r00 fails while r01 (slow) is still deploying.
    fleet = make_fleet(tmp_path, sim, repos=6, wave={"parallel": 2, "max_failures": 0})
    _fail(fleet, sim, "r00-d0")
    sim.set_fault(fleet.dep("r01-d0").id, deploy_extra_seconds=1000)  # +1 s of build

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 4, out.stdout + out.stderr
    assert "budget tripped: max_failures tripped: 1 Deployments failed" in out.stderr
    rows = fleet.records()
    assert (rows["r00-d0"].state, rows["r01-d0"].state) == ("failed", "verified")
    _untouched(fleet, _names(fleet, 2, 3, 4, 5))
    assert "not finished" in out.stdout  # the recap shows the pending ones
    assert "failed=1 not finished=4 ok=1" in out.stdout


def test_a_ramp_runs_its_batches_in_order_one_after_the_other(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=6,
                       wave={"parallel": 10, "batch": [1, "50%", "100%"]}, runner_parallel=10)

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    lines = log_lines(out.stderr)
    # 6 Deployments: 1, then 50% of 6 = 3, then the 2 left (Ansible's serial).
    assert f"wave 1: 6 Deployments to {TARGET} in batches [1, 3, 2]" in lines
    batch_of: dict[str, int] = {}
    finished_in: dict[str, int] = {}
    batch = 0
    for line in lines:
        if line.startswith("batch "):
            batch = int(line.split()[1].rstrip(":"))
            assert line == f"batch {batch}: {[1, 3, 2][batch - 1]} Deployments"
        elif line.startswith("  ") and ": ok (" in line:
            finished_in[line.split(":")[0].strip()] = batch
        elif line.startswith("  "):
            batch_of.setdefault(line.split(":")[0].strip(), batch)
    expected = {"r00-d0": 1, "r01-d0": 2, "r02-d0": 2, "r03-d0": 2, "r04-d0": 3, "r05-d0": 3}
    assert batch_of == expected
    assert finished_in == expected  # each batch finished before the next one began
    # The simulator agrees: every deploy of a batch came after the previous batch's deploys.
    stamps = {d.name: fleet.sim_dep(d)["deploys"][0] for d in fleet.deps}
    for earlier, later in ((1, 2), (2, 3)):
        done = max(_t(stamps[n]["deployed_at"]) for n, b in expected.items() if b == earlier)
        began = min(_t(stamps[n]["created_at"]) for n, b in expected.items() if b == later)
        assert done < began


def _t(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
