"""Every simulator fault, one faulted Deployment in a wave of four healthy ones.

The faulted Deployment must end `failed` in the journal with Astro's own words, the
others `verified`, the failure counted by the budget (`max_failures: 0` names it), the
run exit 4, and the recap show it.
"""

from __future__ import annotations

import re

import pytest
from simulators import SimHandle

from tests.rollout.helpers import START, TARGET, GenFleet, make_fleet, run_step, sim_hook

FAULTED = "r01-d0"
BUDGET = "max_failures tripped: 1 Deployments failed in this wave, more than the 0 allowed"

# (fault fields, fragment(s) of the journal's error, state it failed from, Astro left at)
FAULTS = [
    pytest.param({"deploy_error": "Internal server error: the image could not be rolled out"},
                 "deploy failed: astro deploy cl001x00 failed (exit code 1): Internal server "
                 "error: the image could not be rolled out", "deploying", START, id="deploy-error"),
    pytest.param({"deploy_noop": "uncommitted"},
                 "exited 0 but deployed nothing: Project directory has uncommitted changes",
                 "deploying", START, id="trap-uncommitted"),
    pytest.param({"deploy_noop": "workspace_mismatch"},
                 "exited 0 but deployed nothing: Invalid workspace id ws-1 was provided through "
                 "the --workspace-id flag", "deploying", START, id="trap-workspace-mismatch"),
    pytest.param({"deploy_noop": "no_dags_declined"},
                 "exited 0 but deployed nothing: the deploy was cancelled at a prompt",
                 "deploying", START, id="trap-declined-prompt"),
    # 600,000 simulated seconds at the fixture's 0.001 scale: a 10-minute build, over the
    # 5 s time-out this case sets (SLOW_DEPLOY_TIMEOUT).
    pytest.param({"deploy_extra_seconds": 600_000},
                 "did not finish within 5s and was killed", "deploying", START,
                 id="slow-deploy-timeout"),
    pytest.param({"stuck_deploying": True},
                 ("verification failed", f"Astro reports Runtime {TARGET}, DEPLOYING"),
                 "deployed", TARGET, id="stuck-deploying"),
    pytest.param({"unhealthy_after_deploy": True},
                 ("verification failed", f"Astro reports Runtime {TARGET}, UNHEALTHY"),
                 "deployed", TARGET, id="unhealthy"),
    pytest.param({"reported_runtime_version": "12.3.0"},
                 ("verification failed", f"expected Runtime {TARGET}",
                  "Astro reports Runtime 12.3.0, HEALTHY"),
                 "deployed", "12.3.0", id="wrong-version-reported"),
]


# A healthy deploy (an astro-sim process) must fit in the deploy time-out even on a
# loaded machine; only the slow-build case needs one short enough to wait for.
DEPLOY_TIMEOUT, SLOW_DEPLOY_TIMEOUT = 60, 5


def _fleet(tmp_path, sim: SimHandle, extra_steps: str = "",
           deploy_timeout: float = DEPLOY_TIMEOUT) -> GenFleet:
    return make_fleet(tmp_path, sim, repos=4, wave={"parallel": 4, "max_failures": 0},
                      deploy_timeout=deploy_timeout, verify_timeout=2, extra_steps=extra_steps)


def _assert_one_failed(
    fleet: GenFleet, out, fragments: str | tuple[str, ...], failed_from: str | None
) -> None:
    assert out.returncode == 4, out.stdout + out.stderr
    rows = fleet.records()
    bad = rows.pop(FAULTED)
    fragments = (fragments,) if isinstance(fragments, str) else fragments
    assert bad.state == "failed" and all(f in (bad.error or "") for f in fragments), bad.error
    assert bad.failed_from == failed_from
    assert {r.state for r in rows.values()} == {"verified"}
    for dep in fleet.deps:
        if dep.name != FAULTED:
            assert fleet.sim_dep(dep)["runtime_version"] == TARGET
    # The budget counted it, and the recap, the verdict and the report say so.
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith(f"{FAULTED} :"))
    assert re.match(rf"{FAULTED} : failed +{START} → {TARGET}  state=failed", line), line
    assert all(f in line for f in fragments), line
    assert f"wave 1: HALTED: {BUDGET}" in out.stdout
    assert f"budget tripped: {BUDGET}; no new Deployment starts" in out.stderr
    assert "resume with: astro-fleet upgrade --wave 1" in out.stderr
    report = (fleet.root / ".upgrade" / "reports" / "rollout-1-wave-1.md").read_text()
    assert f"| {FAULTED} | r01 | {START} | {TARGET} | failed | failed |" in report


@pytest.mark.parametrize(("fault", "fragment", "failed_from", "astro_left_at"), FAULTS)
def test_a_faulted_deployment_fails_alone_with_astros_message(
    tmp_path, sim: SimHandle, fault: dict, fragment: str, failed_from: str, astro_left_at: str
) -> None:
    slow = "deploy_extra_seconds" in fault
    fleet = _fleet(tmp_path, sim, deploy_timeout=SLOW_DEPLOY_TIMEOUT if slow else DEPLOY_TIMEOUT)
    sim.set_fault(fleet.dep(FAULTED).id, **fault)

    out = fleet.invoke("upgrade", "--wave", "1")

    _assert_one_failed(fleet, out, fragment, failed_from)
    state = fleet.sim_dep(FAULTED)
    assert state["runtime_version"] == astro_left_at
    # One deploy was started and recorded before it started, whatever became of it (the
    # uncommitted and workspace traps fire before Astro creates a deploy record).
    assert fleet.records()[FAULTED].deploys == 1 and len(state["deploy_attempts"]) <= 1
    # Invariant 1: the high-water mark rises only once Astro accepted the new Runtime.
    with fleet.journal() as journal:
        marks = {k: str(v) for k, v in journal.high_water().items()}
    deployed = failed_from == "deployed"
    assert marks.get(fleet.dep(FAULTED).id) == (TARGET if deployed else None)


def test_a_downgrade_is_refused_by_astro_when_the_deployment_moved_on_after_planning(
    tmp_path, sim: SimHandle
) -> None:
    # Between the plan and the deploy someone deployed 12.5.0 by hand: a repo-step hook
    # makes the simulator's Deployment newer than the plan knew, so only Astro can refuse.
    fleet_id = "cl001x00"
    hook = sim_hook(sim, f"/_sim/deployments/{fleet_id}", {"runtime_version": "12.5.0"})
    fleet = _fleet(tmp_path, sim, run_step(hook, when="{{ repo.name == 'r01' }}"))

    out = fleet.invoke("upgrade", "--wave", "1")

    _assert_one_failed(
        fleet, out,
        "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version "
        "to 12.5.0 or higher in your Dockerfile", "deploying")
    state = fleet.sim_dep(FAULTED)
    assert state["runtime_version"] == "12.5.0" and state["deploy_count"] == 0


def test_a_deployment_deleted_after_planning_fails_with_astros_not_found(
    tmp_path, sim: SimHandle
) -> None:
    hook = sim_hook(sim, "/_sim/faults/cl001x00", {"missing": True}, method="PUT")
    fleet = _fleet(tmp_path, sim, run_step(hook, when="{{ repo.name == 'r01' }}"))

    out = fleet.invoke("upgrade", "--wave", "1")

    _assert_one_failed(fleet, out, "Deployment not found", "deploying")
    assert fleet.sim_dep(FAULTED)["deploy_count"] == 0


def test_a_deployment_unknown_to_astro_at_plan_time_stops_the_wave_before_it_starts(
    tmp_path, sim: SimHandle
) -> None:
    fleet = _fleet(tmp_path, sim)
    sim.set_fault(fleet.dep(FAULTED).id, missing=True)

    out = fleet.invoke("upgrade", "--wave", "1")

    # The plan refuses it (bad input): the wave does not start, nothing is written (it
    # used to be "skipped" and the rollout marked completed with it never upgraded).
    assert out.returncode == 2, out.stdout + out.stderr
    assert "wave 1 cannot start: 1 Deployment(s) refused (nothing was changed)" in out.stderr
    assert "Astro has no Deployment cl001x00 in workspace ws-1" in out.stderr
    assert "--limit '!r01-d0'" in out.stderr
    assert not fleet.journal_file.exists()
    assert all(not fleet.sim_dep(d)["deploy_attempts"] for d in fleet.deps)

    sim.clear_faults(fleet.dep(FAULTED).id)
    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert {r.state for r in fleet.records().values()} == {"verified"}
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
