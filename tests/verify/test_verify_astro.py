"""The Astro-side checks (version, healthy) against real deploys and the simulator's faults."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import replace

import pytest
from simulators import SimHandle

from tests.verify.helpers import TARGET, check, config, deployment
from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.hosts.host import LocalHost


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
    sim.freeze_clock()
    deploy("dep-1", TARGET)
    sim.advance(120)  # past the simulated rollout: HEALTHY, reporting the wrong Runtime

    verdict = check(cp, catalog, config({"name": "version", "timeout": 30}))

    assert not verdict.ok
    result = verdict.results[0]
    assert result.attempts == 1  # not polled until the 30 s time-out: waiting cannot help
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

    verdict = check(cp, catalog, config("version", "health", "import_errors"),
                    dep=deployment("ghost"))

    by = results(verdict)
    assert by["version"].status == "fail"
    assert "Astro knows no Deployment with id ghost in workspace ws-1" in by["version"].message
    for name in ("health", "import_errors"):
        assert by[name].status == "inconclusive"
        assert by[name].message.startswith("not run: Astro knows no Deployment with id ghost")
    assert not verdict.ok
    # The summary names the Deployment once and does not repeat the reason per check.
    assert verdict.summary == (
        "ghost-name: verification failed: version fail: Astro knows no Deployment with id "
        "ghost in workspace ws-1 (Deployment not found); check id and workspace_id in the "
        "inventory; not run: health, import_errors.")


def test_after_a_failure_later_checks_look_once(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", reported_runtime_version="12.4.0")
    sim.freeze_clock()
    deploy("dep-1", TARGET)
    sim.advance(120)  # past the simulated rollout

    verdict = check(cp, catalog, config("version", {"name": "airflow_version", "timeout": 30,
                                                    "expected": "9.9.9"}, "health"))

    by = results(verdict)
    assert by["version"].attempts == 1  # HEALTHY on the wrong Runtime: no reason to wait
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

    verdict = check(cp, catalog, config({"name": "version", "timeout": 60}, "health",
                                        poll=0.2), stop=stop)

    # Interrupted, not "not passed within 60 s": the stop ended the wait.
    assert verdict.interrupted and not verdict.ok
    assert [(r.name, r.status, r.message) for r in verdict.results] == [
        ("version", "inconclusive", "interrupted")]
    assert "interrupted" in verdict.summary


def test_an_already_set_stop_runs_nothing(sim: SimHandle, cp, catalog):
    stop = threading.Event()
    stop.set()
    verdict = check(cp, catalog, config("version"), stop=stop)
    assert verdict.interrupted and not verdict.ok and verdict.results == []


class CountingPlane(ControlPlane):
    """The production control plane, counting how often Astro is asked."""

    def __init__(self, config: ControlPlaneConfig):
        super().__init__(config)
        self.reads: Counter[str] = Counter()

    def read_status(self, deployment_id: str, workspace_id: str, **kw):
        self.reads["status"] += 1
        return super().read_status(deployment_id, workspace_id, **kw)

    def inspect(self, deployment_id: str, workspace_id: str):
        self.reads["inspect"] += 1
        return super().inspect(deployment_id, workspace_id)


@pytest.mark.parametrize("via", ["auto", "cli"])
def test_after_a_deploy_astro_is_asked_once_per_look_and_later_checks_reuse_it(
        sim: SimHandle, cp, catalog, deploy, via: str):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    deploy("dep-1", TARGET)
    counting = CountingPlane(replace(cp.config, status_via=via))

    with counting:
        # The default first poll (0.5 s) outlasts the simulated rollout: 1 or 2 looks.
        verdict = check(counting, catalog, config("version", "healthy", "airflow_version",
                                                  "health", poll=10))

    assert verdict.ok, verdict.summary
    by = results(verdict)
    # healthy (and the Airflow checks' URL) used the answer that made version pass.
    assert by["healthy"].attempts == 1
    assert counting.reads["status"] == by["version"].attempts <= 2
    # auto reads over the simulator's platform API; cli spawns one inspect per read.
    assert counting.reads["inspect"] == (0 if via == "auto" else counting.reads["status"])


def test_a_failure_reports_the_time_out_that_applied(sim: SimHandle, cp, catalog, deploy,
                                                     tmp_path):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", stuck_deploying=True)
    deploy("dep-1", TARGET)

    # version's own limit is 600 s; the verification's 1.5 s ends it first.
    verdict = check(cp, catalog, config("version", timeout=1.5))

    message = verdict.results[0].message
    assert message.startswith("not passed within 1.5 s (the verification's time-out): ")
    assert "600" not in message

    # A later check gets what the earlier ones left of the verification's time-out.
    sim.add_deployment("dep-2", "two", runtime_version=TARGET)
    # 4 s: what is left stays above the 1 s every check gets however slow the machine is
    # (the first two checks take 0.5 s and a little more).
    verdict = check(cp, catalog, config("version", {"name": "command", "argv": ["sleep", "0.5"]},
                                        {"name": "airflow_version", "expected": "9.9.9"},
                                        timeout=4),
                    dep=deployment("dep-2"), host=LocalHost(), repo_dir=str(tmp_path))
    message = verdict.results[2].message
    assert re.match(r"not passed within \d(\.\d)? s \(what was left of the verification's 4 s "
                    r"time-out\): Airflow reports 2\.11\.2\+astro\.1; expected 9\.9\.9", message)


def test_an_airflow_failure_names_the_deployment_once(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.set_fault("dep-1", airflow_5xx=100)

    verdict = check(cp, catalog, config("version", {"name": "health", "timeout": 0.3}))

    assert not verdict.ok
    assert verdict.summary.startswith("dep-1-name: verification failed: health inconclusive: "
                                      "the Airflow API could not be asked: GET http://")
    assert verdict.summary.count("dep-1-name") == 1
    assert "Deployment dep-1" not in verdict.summary
    assert "answered 503" in verdict.summary
