"""The Airflow-side checks: Airflow version, health and heartbeats, DAG import errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simulators import SimHandle

from tests.verify.helpers import TARGET, check, config
from upgrade.controlplane.airflow import ComponentHealth, Health
from upgrade.model.catalog import Catalog, Release
from upgrade.model.versions import parse_version
from upgrade.run.verify import checks, verify

OLD_ERROR = {"filename": "/usr/local/airflow/dags/old_broken.py",
             "stack_trace": "SyntaxError: invalid syntax (old_broken.py, line 4)"}


# ------------------------------------------------------------------ airflow_version


def test_airflow_version_compares_the_exact_version_the_catalog_knows(sim: SimHandle, cp,
                                                                       catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config("version", "airflow_version"))

    result = verdict.results[1]
    assert result.status == "pass"
    assert result.message == ("Airflow reports 2.11.2+astro.1, as expected (the catalog's for "
                              f"Runtime {TARGET}).")


def test_airflow_version_compares_major_minor_when_that_is_all_it_knows(sim: SimHandle, cp,
                                                                        catalog):
    sim.add_deployment("dep-1", "one", runtime_version="12.5.0")  # catalog: Airflow 2.10.*

    verdict = check(cp, catalog, config("airflow_version"), target="12.5.0")

    result = verdict.results[0]
    assert result.status == "pass"
    assert "only 2.10 was compared" in result.message
    assert "2.10.*" in result.message


def test_airflow_version_unknown_to_the_catalog_passes_with_a_note(sim: SimHandle, cp):
    sim.add_deployment("dep-1", "one", runtime_version="12.5.0")
    bare = Catalog((Release(parse_version("12.5.0")),))

    verdict = check(cp, bare, config("airflow_version"), target="12.5.0")

    assert verdict.ok
    assert verdict.results[0].message == ("not compared: the catalog does not know the Airflow "
                                          "version of Runtime 12.5.0.")


def test_airflow_version_mismatch_fails_after_waiting(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)

    verdict = check(cp, catalog, config({"name": "airflow_version", "expected": "2.9.3",
                                         "timeout": 0.5}))

    result = verdict.results[0]
    assert result.status == "fail"
    assert result.attempts > 1
    assert "Airflow reports 2.11.2+astro.1; expected 2.9.3 (configured)" in result.message


# ---------------------------------------------------------------------------- health


def test_health_passes_and_says_what_was_not_checked(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)

    verdict = check(cp, catalog, config("health"))

    message = verdict.results[0].message
    assert verdict.ok
    assert message.startswith("metadatabase healthy; scheduler healthy (heartbeat ")
    assert "dag_processor not present, not checked" in message


def test_stale_scheduler_heartbeat_after_deploy_fails(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    sim.set_fault("dep-1", scheduler_stale_after_deploy=True)
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config("version", {"name": "health", "timeout": 0.5}))

    assert verdict.results[0].status == "pass"
    health = verdict.results[1]
    assert health.status == "fail"
    assert "scheduler is unhealthy (heartbeat 6" in health.message  # ~600 s old
    assert not verdict.ok


def test_heartbeat_age_threshold_and_absent_components():
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def comp(status, age):
        return ComponentHealth(status, None if age is None else now - timedelta(seconds=age))

    doc = Health("healthy", comp("healthy", 90), comp("healthy", 5), comp(None, None))
    problems, notes = checks.assess_health(doc, max_heartbeat_age=60, now=now)
    assert problems == ["scheduler heartbeat is 90 s old (limit 60 s)"]
    assert "triggerer healthy (heartbeat 5 s old)" in notes
    assert "dag_processor not present, not checked" in notes

    problems, _ = checks.assess_health(doc, max_heartbeat_age=120, now=now)
    assert problems == []

    problems, _ = checks.assess_health(doc, max_heartbeat_age=120, now=now,
                                       components=("metadatabase", "scheduler",
                                                   "dag_processor"))
    assert problems == ["dag_processor is not running (no status, no heartbeat)"]

    down = Health("unhealthy", comp("healthy", 1), comp("unhealthy", 400), comp(None, None))
    problems, _ = checks.assess_health(down, now=now)
    assert problems == ["metadatabase is unhealthy", "triggerer is unhealthy (heartbeat 400 s old)"]


# --------------------------------------------------------------------- import errors


def test_new_import_errors_fail_at_once_naming_the_files(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0", import_errors=[OLD_ERROR])
    baseline = verify.capture_baseline(cp, cp.inspect("dep-1", "ws-1"))
    assert baseline["files"] == [OLD_ERROR["filename"]] and baseline["count"] == 1
    sim.set_fault("dep-1", import_errors_after_deploy=2)
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config("version", {"name": "import_errors", "timeout": 30}),
                    baseline=baseline)

    result = verdict.results[1]
    assert result.status == "fail" and result.attempts == 1  # waiting will not help
    assert result.message.startswith("2 new DAG import error(s): ")
    assert result.message.count("/usr/local/airflow/dags/broken_dag_") == 2
    # The line that says why, not "Traceback (most recent call last):".
    assert "ModuleNotFoundError: No module named 'airflow.operators.dummy'" in result.message
    assert "Traceback" not in result.message
    assert "old_broken.py" not in result.message  # it was there before the deploy
    assert not verdict.ok


def test_new_import_errors_within_max_new_pass(sim: SimHandle, cp, catalog, deploy):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0", import_errors=[OLD_ERROR])
    baseline = verify.capture_baseline(cp, cp.inspect("dep-1", "ws-1"))
    sim.set_fault("dep-1", import_errors_after_deploy=2)
    deploy("dep-1", TARGET)

    verdict = check(cp, catalog, config("version", {"name": "import_errors", "max_new": 2}),
                    baseline=baseline)

    assert verdict.ok
    assert verdict.results[1].message == (
        "2 new DAG import error(s), within the 2 allowed (1 from before the deploy).")


def test_without_a_baseline_every_import_error_counts_as_new(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET, import_errors=[OLD_ERROR])

    verdict = check(cp, catalog, config("import_errors"), baseline=None)

    result = verdict.results[0]
    assert result.status == "fail"
    assert "old_broken.py: SyntaxError: invalid syntax (old_broken.py, line 4)" in result.message
    assert "No baseline was captured before the deploy" in result.message


def test_settle_keeps_watching_before_passing(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)

    verdict = check(cp, catalog, config({"name": "import_errors", "settle": 0.4},
                                        poll=0.1), baseline={"files": []})

    result = verdict.results[0]
    assert result.status == "pass"
    assert result.message == "no new DAG import errors (0 from before the deploy)."
    # It passed only once the settle time had gone by (on its own clock): a lower bound,
    # true however slow the machine; how many looks fit in it depends on the machine.
    assert result.duration >= 0.4


def test_capture_baseline_never_raises_when_the_api_is_down(sim: SimHandle, cp):
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    info = cp.inspect("dep-1", "ws-1")
    sim.set_fault("dep-1", airflow_5xx=5)

    baseline = verify.capture_baseline(cp, info)

    assert baseline["files"] is None and baseline["count"] is None
    assert "503" in baseline["error"]


# ------------------------------------------------------------------ API failures


def test_airflow_api_timeouts_are_inconclusive(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.set_fault("dep-1", airflow_hang=20)

    verdict = check(cp, catalog, config({"name": "health", "timeout": 1.2}))

    result = verdict.results[0]
    assert result.status == "inconclusive"
    assert "the Airflow API could not be asked" in result.message
    assert "timed out" in result.message
    assert not verdict.ok  # inconclusive fails unless told otherwise


def test_inconclusive_may_be_counted_as_pass(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.set_fault("dep-1", airflow_5xx=100)

    verdict = check(cp, catalog, config("version", {"name": "health", "timeout": 0.5},
                                        inconclusive="pass"))

    assert verdict.results[1].status == "inconclusive"
    assert "answered 503" in verdict.results[1].message
    assert verdict.ok
    assert "health inconclusive (counted as pass)" in verdict.summary


def test_a_flaky_api_is_polled_until_it_answers(sim: SimHandle, cp, catalog):
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.set_fault("dep-1", airflow_5xx=2)

    verdict = check(cp, catalog, config({"name": "health", "fresh_heartbeats": 1}))

    assert verdict.ok
    assert verdict.results[0].attempts == 3
