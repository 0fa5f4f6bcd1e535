"""Resume (durable, nothing done twice, nothing forgotten): the same command after a halt, a crash or Ctrl-C.

Deploy counts come from both sides: the journal counts every deploy it started, the
simulator every deploy that reached it; a resumed run must never deploy what is done.
"""

from __future__ import annotations

import signal

import pytest
from simulators import SimHandle

from tests.rollout.helpers import (
    TARGET,
    kill_mid_deploy,
    log_lines,
    make_fleet,
    state_of,
    wait_for,
)

ERROR = {"deploy_error": "Internal server error: the image could not be rolled out"}


def test_a_halted_wave_resumes_retrying_failures_and_running_the_rest(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=6, wave={"parallel": 2, "batch": 2, "max_failures": 0})
    sim.set_fault(fleet.dep("r00-d0").id, **ERROR)  # one-shot: the next deploy succeeds

    first = fleet.invoke("upgrade", "--wave", "1")

    assert first.returncode == 4, first.stdout + first.stderr
    rows = fleet.records()
    assert [rows[d.name].state for d in fleet.deps] == [
        "failed", "verified", "pending", "pending", "pending", "pending"]

    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "wave 1: PASSED" in again.stdout
    rows = fleet.records()
    assert {r.state for r in rows.values()} == {"verified"}
    # The failed one was deployed again (the journal counts both deploys), the verified one
    # was not touched, the never-attempted ones ran once.
    assert {n: r.deploys for n, r in rows.items()} == {
        "r00-d0": 2, "r01-d0": 1, "r02-d0": 1, "r03-d0": 1, "r04-d0": 1, "r05-d0": 1}
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
    assert fleet.attempts() == {"r00-d0": 2, "r01-d0": 1, "r02-d0": 1, "r03-d0": 1,
                                "r04-d0": 1, "r05-d0": 1}
    started = {ln.split(":")[0].strip() for ln in log_lines(again.stderr) if ln.endswith(": Deploy")}
    assert started == {"r00-d0", "r02-d0", "r03-d0", "r04-d0", "r05-d0"}
    retry = [e for e in fleet.events("transition")
             if e.deployment_id == fleet.dep("r00-d0").id and e.to_state == "pending"
             and e.from_state == "failed"]
    assert len(retry) == 1 and "retry after:" in (retry[0].message or "")
    assert "the image could not be rolled out" in (retry[0].message or "")


@pytest.mark.parametrize("at_target", [True, False], ids=["astro-at-target", "astro-not-at-target"])
def test_a_run_killed_mid_deploy_inspects_before_deploying_again(
    tmp_path, sim: SimHandle, at_target: bool
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2, wave={"parallel": 2})
    dep = fleet.dep("r00-d0")
    killed = kill_mid_deploy(fleet, sim, "r00-d0")
    row = fleet.records()["r00-d0"]
    assert (row.state, row.deploys) == ("deploying", 1)
    assert fleet.sim_dep(dep)["deploy_count"] == 0
    if at_target:
        # The deploy finished just before the crash: deploy the committed branch by hand.
        done = sim.run("deploy", dep.id, "-f", "--workspace-id", "ws-1",
                       cwd=fleet.repo_path("r00"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert fleet.sim_dep(dep)["runtime_version"] == TARGET

    attempts_before = len(fleet.sim_dep(dep)["deploy_attempts"])

    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert ("note: took over the journal lock left by astro-fleet upgrade --wave 1 by "
            in again.stderr and f"pid {killed}," in again.stderr
            and "that process is gone (killed or crashed)" in again.stderr)
    rows = fleet.records()
    assert rows["r00-d0"].state == "verified" and rows["r01-d0"].state == "verified"
    state = fleet.sim_dep(dep)
    assert state["deploy_count"] == 1 and state["runtime_version"] == TARGET
    messages = [e.message for e in fleet.events("transition") if e.deployment_id == dep.id]
    if at_target:
        # Not deployed again: the fresh plan sees Astro and the branch at the target (a
        # no-op), so only verification runs.
        assert rows["r00-d0"].deploys == 1
        assert messages.count("deploy started") == 1
        assert len(fleet.sim_dep(dep)["deploy_attempts"]) == attempts_before
    else:
        assert rows["r00-d0"].deploys == 2  # recorded before it started, like the first
        assert messages.count("deploy started") == 2
    assert fleet.records()["r01-d0"].deploys == 1
    assert [e.message for e in fleet.events("lock_taken_over")] == [
        ln.split("note: ", 1)[1] for ln in again.stderr.splitlines() if "note: took over" in ln]


def test_ctrl_c_lets_in_flight_deploys_finish_and_the_rerun_completes(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=6, wave={"parallel": 2}, runner_parallel=2)
    for dep in fleet.deps:
        sim.set_fault(dep.id, deploy_extra_seconds=1500)  # 1.5 s builds
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(lambda: sum(state_of(fleet.journal_file, d.name) == "deploying"
                             for d in fleet.deps[:2]) == 2, what="two deploys in flight")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 4, stdout + stderr
    assert "interrupted: no new Deployment starts; in-flight steps finish" in stderr
    assert "resume with: astro-fleet upgrade --wave 1" in stderr
    assert "wave 1: INCOMPLETE: interrupted (Ctrl-C)" in stdout
    # In flight: the deploys finished and were recorded; nothing else started.
    rows = fleet.records()
    first, rest = fleet.deps[:2], fleet.deps[2:]
    for dep in first:
        assert rows[dep.name].state in ("deployed", "verified") and rows[dep.name].deploys == 1
        assert fleet.sim_dep(dep)["runtime_version"] == TARGET
    for dep in rest:
        assert rows[dep.name].state == "pending" and fleet.attempts()[dep.name] == 0
    with fleet.journal() as journal:
        wave = journal.wave(1, 1)
    assert wave is not None and (wave.status, wave.halt_reason) == ("halted", "interrupted (Ctrl-C)")

    for dep in fleet.deps:
        sim.clear_faults(dep.id)
    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "took over" not in again.stderr  # Ctrl-C is a clean exit: the lock was released
    rows = fleet.records()
    assert {r.state for r in rows.values()} == {"verified"}
    assert {r.deploys for r in rows.values()} == {1}
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
