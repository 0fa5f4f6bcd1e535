"""The Astro-side checks (version, healthy) against real deploys and the simulator's faults."""

from __future__ import annotations

import threading
import time

from tests.verify.helpers import TARGET, check, config, deployment
from upgrade.sim.testing import SimHandle


def results(verdict):
    return {r.name: r for r in verdict.results}


def test_a_real_deploy_passes_every_check(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config("version", "healthy", "airflow_version", "health",
                                        "import_errors"), baseline={"files": []})

    assert verdict.ok, verdict.summary
    assert [r.status for r in verdict.results] == ["pass"] * 5
    by = results(verdict)
    assert by["version"].message == f"Astro reports Runtime {TARGET}, HEALTHY."
    assert "2.11.2" in by["airflow_version"].message
    assert verdict.summary.startswith("dep-1-name: verified (version, healthy, airflow_version")


def test_healthy_on_another_runtime_fails_without_waiting(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", reported_runtime_version="12.4.0")
    deploy("dep-1", TARGET)
    time.sleep(0.3)  # past the simulated rollout: HEALTHY, reporting the wrong Runtime

    started = time.monotonic()
    verdict = check(cp, catalog, config({"name": "version", "timeout": 30}))

    assert time.monotonic() - started < 5  # not the 30 s time-out: waiting cannot help
    assert not verdict.ok
    result = verdict.results[0]
    assert result.status == "fail"
    assert f"expected Runtime {TARGET}" in result.message
    assert "Astro reports Runtime 12.4.0, HEALTHY" in result.message


def test_unhealthy_after_deploy_fails_when_its_time_runs_out(sim: SimHandle, cp, catalog,
                                                             deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", unhealthy_after_deploy=True)
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config({"name": "version", "timeout": 1.0}))

    result = verdict.results[0]
    assert result.status == "fail"
    assert result.attempts > 1  # UNHEALTHY may pass during a rollout: it kept looking
    assert "not passed within 1 s" in result.message
    assert f"Astro reports Runtime {TARGET}, UNHEALTHY" in result.message
    assert not verdict.ok


def test_stuck_deploying_is_a_failure_not_inconclusive(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", stuck_deploying=True)
    deploy("dep-1", TARGET)

    # Even a gate that lets inconclusive results pass must stop a stuck Deployment.
    verdict = check(cp, catalog, config({"name": "version", "timeout": 0.8},
                                        inconclusive="pass"))

    result = verdict.results[0]
    assert result.status == "fail"
    assert "DEPLOYING (still rolling out, or stuck)" in result.message
    assert not verdict.ok


def test_healthy_check_reads_the_status_only(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0", status="UNHEALTHY")

    verdict = check(cp, catalog, config({"name": "healthy", "timeout": 0.5}))
    assert verdict.results[0].status == "fail"
    assert "UNHEALTHY" in verdict.results[0].message

    sim.update_deployment("dep-1", status="HIBERNATING")
    verdict = check(cp, catalog, config("healthy"))
    assert verdict.ok and verdict.results[0].message == "Astro reports HIBERNATING"


def test_unknown_deployment_fails_and_airflow_checks_are_not_run(sim: SimHandle, cp, catalog):
    sim.add_deployment("other", "other", runtime_version=TARGET)

    started = time.monotonic()
    verdict = check(cp, catalog, config("version", "health", "import_errors"),
                    dep=deployment("ghost"))

    assert time.monotonic() - started < 5
    by = results(verdict)
    assert by["version"].status == "fail"
    assert "Astro does not know Deployment ghost in workspace ws-1" in by["version"].message
    for name in ("health", "import_errors"):
        assert by[name].status == "inconclusive"
        assert by[name].message.startswith("not run: Astro does not know Deployment ghost")
    assert not verdict.ok
    assert "version fail" in verdict.summary


def test_after_a_failure_later_checks_look_once(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", reported_runtime_version="12.4.0")
    deploy("dep-1", TARGET)
    time.sleep(0.3)

    started = time.monotonic()
    verdict = check(cp, catalog, config("version", {"name": "airflow_version", "timeout": 30,
                                                    "expected": "9.9.9"}, "health"))

    assert time.monotonic() - started < 5  # airflow_version did not wait its 30 s
    by = results(verdict)
    assert by["version"].status == "fail"
    assert by["airflow_version"].status == "fail"
    assert by["airflow_version"].attempts == 1
    assert "(looked once: verification had already failed)" in by["airflow_version"].message
    assert by["health"].status == "pass"  # still reported, for the record


def test_stop_returns_promptly_and_marks_the_verdict(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", stuck_deploying=True)
    deploy("dep-1", TARGET)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    started = time.monotonic()
    verdict = check(cp, catalog, config({"name": "version", "timeout": 60}, "health",
                                        poll=0.2), stop=stop)

    assert time.monotonic() - started < 2
    assert verdict.interrupted and not verdict.ok
    assert [(r.name, r.status, r.message) for r in verdict.results] == [
        ("version", "inconclusive", "interrupted")]
    assert "interrupted" in verdict.summary


def test_an_already_set_stop_runs_nothing(sim: SimHandle, cp, catalog):
    stop = threading.Event()
    stop.set()
    verdict = check(cp, catalog, config("version"), stop=stop)
    assert verdict.interrupted and not verdict.ok and verdict.results == []
