"""The canary ``dag_run`` check and the heartbeat freshness rule, against the simulator.

The same behaviour is proven against real Airflow 2.10.5 and 3.0.6 in tests/contract; here
the faults real Airflow cannot be made to show on demand: failed and stuck runs, frozen
heartbeats that Airflow still calls healthy, an API that fails while a DAG is unpaused.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from simulators import SimHandle

from tests.verify.helpers import TARGET, check, config, deployment
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.model.versions import parse_version
from upgrade.run.verify import canary, verify

AF3 = "3.0-7"


def dag_state(sim: SimHandle, dag_id: str, dep: str = "dep-1", api: str = "v1") -> dict:
    """The DAG as the simulated Airflow API reports it."""
    resp = httpx.get(f"{sim.url}/d/{dep}/api/{api}/dags/{dag_id}",
                     headers={"Authorization": f"Bearer {sim.env['ASTRO_API_TOKEN']}"})
    return resp.json()


def runs(sim: SimHandle, dag_id: str, dep: str = "dep-1") -> list[str]:
    return list(sim.deployment(dep)["dags"][dag_id]["runs"])


def seed(sim: SimHandle, *, paused: bool = True, runtime: str = TARGET,
         tasks: tuple[str, ...] = ("extract", "load")) -> None:
    sim.add_deployment("dep-1", "one", runtime_version=runtime,
                       dags=[{"dag_id": "canary", "is_paused": paused, "tasks": list(tasks)}])


# ------------------------------------------------------------------------ dag_run


def test_a_canary_run_that_succeeds_passes(sim: SimHandle, cp, catalog):
    seed(sim, paused=False)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary",
                                         "conf": {"why": "canary"}}))

    [result] = verdict.results
    assert verdict.ok, result.message
    assert result.message.startswith("DAG canary run astro_fleet_upgrade__")
    assert "succeeded" in result.message
    [run_id] = runs(sim, "canary")
    assert run_id.startswith(canary.RUN_ID_PREFIX)
    assert sim.deployment("dep-1")["dags"]["canary"]["runs"][run_id]["conf"] == {"why": "canary"}


def test_a_paused_canary_fails_at_once_unless_it_may_be_unpaused(sim: SimHandle, cp, catalog):
    seed(sim, paused=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary"}, timeout=20))

    [result] = verdict.results
    assert result.status == "fail" and result.attempts == 1  # final: it did not wait
    assert result.message == (
        "DAG canary is paused, so a run of it would wait forever. Unpause it in Airflow, or "
        "set unpause: true on the dag_run check (it is paused again when the check ends).")
    assert runs(sim, "canary") == []


def test_unpause_true_runs_the_canary_and_pauses_it_again(sim: SimHandle, cp, catalog):
    seed(sim, paused=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary",
                                         "unpause": True}))

    [result] = verdict.results
    assert verdict.ok, result.message
    assert result.message.endswith("DAG canary paused again, as it was.")
    assert dag_state(sim, "canary")["is_paused"] is True


def test_a_failed_run_names_the_failed_task_and_the_log(sim: SimHandle, cp, catalog):
    seed(sim, paused=False)
    sim.set_fault("dep-1", dag_run_fails=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary"}, timeout=20))

    [result] = verdict.results
    [run_id] = runs(sim, "canary")
    assert result.status == "fail"  # failing is final: not "not passed within 20 s"
    quoted = run_id.replace(":", "%3A").replace("+", "%2B")
    assert result.message == (
        f"DAG canary run {run_id} failed: failed task(s) load; log of load: "
        f"http://{sim.url[7:]}/d/dep-1/dags/canary/grid?dag_run_id={quoted}&task_id=load"
        "&tab=logs.")


def test_airflow3_canary_and_its_log_url(sim: SimHandle, cp, catalog):
    seed(sim, paused=False, runtime=AF3)
    sim.set_fault("dep-1", dag_run_fails=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary"}, timeout=20),
                    target=AF3)

    [run_id] = runs(sim, "canary")
    message = verdict.results[0].message
    assert f"failed task(s) load; log of load: http://{sim.url[7:]}/d/dep-1/dags/canary/runs/" \
        in message
    assert message.endswith("/tasks/load?try_number=1.")
    assert run_id.startswith(canary.RUN_ID_PREFIX)


def test_a_stuck_run_fails_at_the_budget_and_the_dag_is_paused_again(sim: SimHandle, cp,
                                                                      catalog):
    seed(sim, paused=True)
    sim.set_fault("dep-1", dag_run_stuck=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary",
                                         "unpause": True, "timeout": 1.0}))

    [result] = verdict.results
    assert result.status == "fail"
    assert result.message.startswith("not passed within 1 s: DAG canary run ")
    assert " is running (see http://" in result.message
    assert result.message.endswith("DAG canary paused again, as it was.")
    assert dag_state(sim, "canary")["is_paused"] is True


def test_a_dag_left_unpaused_by_a_failing_api_fails_the_check(sim: SimHandle, cp, catalog):
    seed(sim, paused=True)
    sim.set_fault("dep-1", dag_run_stuck=True)

    def break_the_api() -> None:
        deadline = time.monotonic() + 60
        while not runs(sim, "canary") and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.set_fault("dep-1", airflow_5xx=1000)

    threading.Thread(target=break_the_api, daemon=True).start()
    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary",
                                         "unpause": True, "timeout": 1.5}))

    [result] = verdict.results
    assert result.status in ("fail", "inconclusive")
    assert "DAG canary was unpaused for the canary run and could not be paused again" \
        in result.message
    assert "pause it by hand" in result.message
    assert not verdict.ok


def test_an_unknown_dag_is_waited_for_then_fails(sim: SimHandle, cp, catalog):
    seed(sim)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "later", "timeout": 0.5}))

    [result] = verdict.results
    assert result.status == "fail" and result.attempts > 1
    assert "Airflow does not know DAG later (yet)" in result.message


def test_no_canary_is_triggered_once_verification_has_failed(sim: SimHandle, cp, catalog):
    seed(sim, paused=False)
    sim.set_fault("dep-1", dag_run_fails=True)

    verdict = check(cp, catalog, config({"name": "dag_run", "dag_id": "canary"},
                                        {"name": "dag_run", "dag_id": "canary"}, timeout=20))

    first, second = verdict.results
    assert first.status == "fail"
    assert second.status == "inconclusive"
    assert second.message == ("not run: verification had already failed, so the canary was "
                              "not triggered.")
    assert len(runs(sim, "canary")) == 1


def test_a_lost_trigger_answer_is_recovered_by_its_run_id(sim: SimHandle):
    """The client retries a trigger; the second try's 409 returns the run the first made."""
    seed(sim, paused=False)
    settings = sim.control_plane(http_retries=0)
    with ControlPlane(settings) as plane:
        info = plane.status("dep-1", "ws-1")
        endpoint = plane.airflow_endpoint(info)
        first = plane.airflow.trigger_dag_run(endpoint, "canary", "mine_1", {})
        again = plane.airflow.trigger_dag_run(endpoint, "canary", "mine_1", {})
    assert first.run_id == again.run_id == "mine_1"
    assert runs(sim, "canary") == ["mine_1"]


# ----------------------------------------------------------------------- heartbeats


def test_a_frozen_heartbeat_that_airflow_calls_healthy_fails(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.set_fault("dep-1", stale_heartbeat=True)

    verdict = check(cp, catalog, config({"name": "health", "timeout": 1.0}))

    [result] = verdict.results
    assert result.status == "fail"
    assert "waiting to see fresh heartbeats advance (scheduler 1 of 2)" in result.message
    health = sim.deployment("dep-1")["heartbeats"]
    assert health["scheduler"]["status"] == "healthy"  # Airflow's 30 s have not passed


def test_stopped_triggerer_and_dag_processor_fail_health(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=AF3)
    sim.set_fault("dep-1", triggerer_unhealthy=True, dag_processor_unhealthy=True)

    verdict = check(cp, catalog, config({"name": "health", "timeout": 0.5}), target=AF3)

    message = verdict.results[0].message
    assert "triggerer is unhealthy (heartbeat 600 s old)" in message
    assert "dag_processor is unhealthy (heartbeat 600 s old)" in message


def test_heartbeats_from_before_the_deploy_do_not_count(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)

    verdict = verify.run_checks(
        cp, config({"name": "health", "timeout": 0.5}), deployment(), parse_version(TARGET),
        catalog, baseline=None, host=None, repo_dir=None, stop=threading.Event(),
        deployed_at=datetime.now(UTC) + timedelta(seconds=5))

    assert "scheduler heartbeat is from before the deploy ended (0 s old)" \
        in verdict.results[0].message


@pytest.mark.parametrize("fresh, looks", [(1, 1), (3, 3)])
def test_fresh_heartbeats_is_how_many_must_be_seen(sim: SimHandle, cp, catalog, fresh, looks):
    sim.configure(heartbeat_seconds=200.0)  # 0.2 s at the fixture's time scale
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)

    verdict = check(cp, catalog, config({"name": "health", "fresh_heartbeats": fresh},
                                        poll=0.25))

    [result] = verdict.results
    assert verdict.ok, result.message
    assert result.attempts >= looks


def test_no_token_reads_differently_from_a_refused_one(sim: SimHandle, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    for extra, said in (({}, "no token was sent (set $AIRFLOW_TOKEN_FOR_TEST to an API token"),
                        ({"AIRFLOW_TOKEN_FOR_TEST": "nope"}, "the token was refused (401")):
        settings = sim.control_plane(token_env="AIRFLOW_TOKEN_FOR_TEST",
                                                    extra_env=extra, http_retries=0)
        with ControlPlane(settings) as plane:
            verdict = check(plane, catalog, config("health", "import_errors"))
        health, errors = verdict.results
        assert health.status == "pass"  # /health needs no token, as on real Airflow
        assert errors.status == "inconclusive"
        assert said in errors.message, errors.message
