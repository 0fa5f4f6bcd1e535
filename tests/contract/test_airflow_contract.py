"""Our Airflow client and every Airflow check, against real Apache Airflow 2.10.5 and 3.0.6.

The checks run through the production path: ``run_checks`` with a ``ControlPlane`` whose
Astro side is the simulator (it only says where the Airflow API is: the real server) and
whose Airflow side is the real Airflow on 127.0.0.1. Each test leaves the shared server as
it found it (components running, DAGs paused, the two broken files only).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract.server import START_TIMEOUT, AirflowServer
from simulators import SimHandle

from tests.verify.helpers import config, deployment
from upgrade.controlplane.airflow import AirflowAPI, AirflowEndpoint, parse_health
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import AirflowAuthError
from upgrade.model.catalog import load_catalog
from upgrade.model.versions import parse_version
from upgrade.run.verify.checks import assess_health
from upgrade.run.verify.verify import Verdict, run_checks

TOKEN_ENV = "AIRFLOW_CONTRACT_TOKEN"
CATALOG = load_catalog()
RUNTIMES = {2: "12.4.0", 3: "3.0-7"}  # any Runtime of the same Airflow major


def client(server: AirflowServer, token: str | None) -> AirflowAPI:
    env = {"ASTRO_API_TOKEN": token} if token is not None else {}
    return AirflowAPI(env=env, timeout=10)


def endpoint(server: AirflowServer) -> AirflowEndpoint:
    return AirflowEndpoint.from_api_url(server.api_url, deployment_id="contract",
                                        scheme="http")


@pytest.fixture
def verify(sim: SimHandle, airflow: AirflowServer) -> Iterator[Callable[..., Verdict]]:
    """Run checks against the real Airflow through the production path; a token is optional."""
    sim.add_deployment("dep-1", "contract", runtime_version=RUNTIMES[airflow.major],
                       airflow_api_url=airflow.api_url)
    planes: list[ControlPlane] = []

    def run(*checks: object, token: str | None = "good", timeout: float = 60.0,
            poll: float = 1.0, baseline: dict | None = None) -> Verdict:
        secret = {"good": airflow.token, "bad": "not-a-valid-token", None: None}[token]
        settings = sim.control_plane(token_env=TOKEN_ENV, http_retries=1, http_timeout=10,
            extra_env={TOKEN_ENV: secret} if secret else {})
        plane = ControlPlane(settings)
        planes.append(plane)
        return run_checks(plane, config(*checks, timeout=timeout, poll=poll), deployment(),
                          parse_version(RUNTIMES[airflow.major]), CATALOG, baseline=baseline,
                          host=None, repo_dir=None, stop=threading.Event())

    yield run
    for plane in planes:
        plane.close()


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool],
               timeout: float = START_TIMEOUT) -> Any:
    """The first answer of ``read()`` that is ``ok``; the last one when none is in time.

    Airflow's liveness is wall-clock: on a loaded machine a component's heartbeat can be
    late for a moment and Airflow then calls it unhealthy. A test that needs a healthy
    answer waits for one instead of taking a single look.
    """
    deadline = time.monotonic() + timeout
    answer = read()
    while not ok(answer) and time.monotonic() < deadline:
        time.sleep(1)
        answer = read()
    return answer


def restart(server: AirflowServer, name: str) -> None:
    """Start a stopped component again and wait until Airflow calls it healthy."""
    server.start_component(name)
    part = name.replace("-", "_")
    server.wait_for(lambda h: h[part]["status"] == "healthy", START_TIMEOUT,
                    f"{name} healthy again")


# ------------------------------------------------------------------ version and health


def test_version_and_health_need_no_token(airflow: AirflowServer) -> None:
    with client(airflow, None) as api:
        version = api.version(endpoint(airflow))
        health = eventually(lambda: api.health(endpoint(airflow)), lambda h: h.healthy)
    assert version.version == airflow.version
    assert isinstance(version.git_version, str)  # not null, as a fixture once claimed
    assert health.healthy
    assert health.scheduler.latest_heartbeat is not None
    assert (health.dag_processor.status is None) == (airflow.major == 2)
    assert health.raw["scheduler"]["latest_scheduler_heartbeat"].endswith("+00:00")


def test_health_check_passes_after_seeing_heartbeats_advance(airflow, verify) -> None:
    components = ["metadatabase", "scheduler", "triggerer"]
    if airflow.major == 3:
        components.append("dag_processor")
    verdict = verify({"name": "health", "components": components}, timeout=60)
    [result] = verdict.results
    assert verdict.ok, result.message
    assert "heartbeats seen advancing (2 fresh each)" in result.message
    assert result.attempts >= 2


def test_airflow_version_check(airflow, verify) -> None:
    verdict = verify({"name": "airflow_version", "expected": airflow.version})
    assert verdict.ok, verdict.summary
    wrong = verify({"name": "airflow_version", "expected": "9.9.9"}, timeout=3)
    assert not wrong.ok and "expected 9.9.9" in wrong.results[0].message


# --------------------------------------------------------------------------- auth


def test_a_bad_token_is_refused_only_where_airflow_needs_one(airflow, verify) -> None:
    verdict = verify({"name": "airflow_version", "expected": airflow.version}, "health",
                     "import_errors", token="bad", timeout=60)
    by_name = {r.name: r for r in verdict.results}
    assert by_name["airflow_version"].status == "pass"
    assert by_name["health"].status == "pass"
    assert by_name["import_errors"].status == "inconclusive"
    code = 401 if airflow.major == 2 else 403
    assert f"the token was refused ({code}" in by_name["import_errors"].message


def test_no_token_and_a_refused_token_read_differently(airflow: AirflowServer) -> None:
    with client(airflow, None) as api, pytest.raises(AirflowAuthError) as none:
        api.import_errors(endpoint(airflow))
    assert none.value.status_code == 401
    assert "no token was sent (set $ASTRO_API_TOKEN" in str(none.value)
    if airflow.major == 3:
        assert "Not authenticated" in str(none.value)
    with client(airflow, "not-a-valid-token") as api, pytest.raises(AirflowAuthError) as bad:
        api.import_errors(endpoint(airflow))
    assert bad.value.status_code == (401 if airflow.major == 2 else 403)
    assert "the token was refused" in str(bad.value)
    assert "not-a-valid-token" not in str(bad.value)
    if airflow.major == 3:
        assert "Invalid JWT token" in str(bad.value)


# ------------------------------------------------------------------- import errors


def test_import_errors_are_absolute_paths_and_page(airflow: AirflowServer) -> None:
    with client(airflow, airflow.token) as api:
        errors = api.import_errors(endpoint(airflow))
        paged = api.import_errors(endpoint(airflow), page_size=1)
    files = {e.filename: e for e in errors}
    assert set(files) == {str(airflow.dags / n) for n in ("broken_syntax.py", "broken_import.py")}
    assert all(Path(f).is_absolute() for f in files)
    assert "SyntaxError" in files[str(airflow.dags / "broken_syntax.py")].stack_trace
    assert "ModuleNotFoundError" in files[str(airflow.dags / "broken_import.py")].stack_trace
    assert [e.filename for e in paged] == [e.filename for e in errors]
    assert all(e.timestamp is not None for e in errors)
    assert (errors[0].bundle_name == "dags-folder") == (airflow.major == 3)


def test_page_sizes_of_real_airflow(airflow: AirflowServer) -> None:
    """Airflow 2 pages 100 by default and at most; 3.0 pages 50 by default and caps none."""
    answer = airflow.api("GET", "/importErrors", params={"limit": 0}).json()
    assert len(answer["import_errors"]) == (2 if airflow.major == 2 else 0)
    assert answer["total_entries"] == 2


def test_new_import_errors_fail_against_the_baseline(airflow, verify) -> None:
    before = sorted(airflow.import_error_files())
    baseline = {"files": before, "count": len(before)}
    assert verify("import_errors", baseline=baseline).ok
    added = airflow.dags / "broken_after_deploy.py"
    added.write_text("# An Airflow DAG file broken by the deploy.\nfrom airflow import DAG\n"
                     "from airflow.operators.gone_in_this_release import GoneOperator\n")
    try:
        airflow.wait_for_import_errors({*before, str(added)})
        verdict = verify("import_errors", baseline=baseline)
        [result] = verdict.results
        assert result.status == "fail"
        assert f"1 new DAG import error(s): {added}:" in result.message
    finally:
        added.unlink()
        airflow.wait_for_import_errors(set(before))


# ------------------------------------------------------------------------ DAG runs


def test_the_logical_date_rule(airflow: AirflowServer) -> None:
    """3.0.6 refuses a trigger without the logical_date key; 2.10.5 needs none."""
    raw = airflow.api("POST", "/dags/canary_ok/dagRuns", json={"dag_run_id": f"raw_{time.time_ns()}"})
    if airflow.major == 3:
        assert raw.status_code == 422
        assert raw.json()["detail"][0]["loc"] == ["body", "logical_date"]
    else:
        assert raw.status_code == 200  # queued; the DAG is paused, so it never runs


def test_dag_run_check_unpauses_runs_and_pauses_again(airflow, verify) -> None:
    assert airflow.api("GET", "/dags/canary_ok").json()["is_paused"]
    verdict = verify({"name": "dag_run", "dag_id": "canary_ok", "unpause": True,
                      "conf": {"canary": True}}, timeout=120)
    [result] = verdict.results
    assert verdict.ok, result.message
    assert "succeeded" in result.message and "paused again, as it was" in result.message
    assert airflow.api("GET", "/dags/canary_ok").json()["is_paused"] is True


def test_dag_run_check_refuses_a_paused_dag_it_may_not_unpause(airflow, verify) -> None:
    runs = airflow.api("GET", "/dags/canary_ok/dagRuns").json()["total_entries"]
    verdict = verify({"name": "dag_run", "dag_id": "canary_ok"}, timeout=30)
    [result] = verdict.results
    assert result.status == "fail" and result.attempts == 1  # final: it did not wait
    assert "is paused" in result.message and "unpause: true" in result.message
    assert airflow.api("GET", "/dags/canary_ok/dagRuns").json()["total_entries"] == runs


def test_dag_run_check_names_the_failed_task_and_its_log(airflow, verify) -> None:
    verdict = verify({"name": "dag_run", "dag_id": "canary_fail", "unpause": True}, timeout=120)
    [result] = verdict.results
    assert result.status == "fail"
    assert "failed task(s) boom;" in result.message
    assert "after" not in result.message.split("failed task(s)")[1].split(";")[0]
    url = result.message.split("log of boom: ")[1].split(" ")[0].rstrip(".")
    assert url.startswith(airflow.root + "/dags/canary_fail/")
    assert httpx.get(url, timeout=10).status_code in (200, 302)  # the UI knows the page
    assert airflow.api("GET", "/dags/canary_fail").json()["is_paused"] is True


def test_dag_run_check_leaves_an_unpaused_dag_unpaused(airflow, verify) -> None:
    airflow.api("PATCH", "/dags/canary_ok", params={"update_mask": "is_paused"},
                json={"is_paused": False})
    try:
        verdict = verify({"name": "dag_run", "dag_id": "canary_ok"}, timeout=120)
        assert verdict.ok, verdict.summary
        assert "paused again" not in verdict.results[0].message
        assert airflow.api("GET", "/dags/canary_ok").json()["is_paused"] is False
    finally:
        airflow.api("PATCH", "/dags/canary_ok", params={"update_mask": "is_paused"},
                    json={"is_paused": True})


def test_dag_run_check_waits_for_an_unknown_dag_then_fails(airflow, verify) -> None:
    verdict = verify({"name": "dag_run", "dag_id": "not_deployed_yet"}, timeout=4)
    [result] = verdict.results
    assert result.status == "fail"
    assert "does not know DAG not_deployed_yet" in result.message


# ------------------------------------------------------- components that stop or die


def test_a_sigkilled_scheduler_fails_the_health_check_within_its_budget(airflow, verify,
                                                                       request):
    """Airflow still calls a SIGKILLed scheduler healthy until its last heartbeat is 30 s
    old; the check fails within its budget all the same, where one look with the old
    60 s bound passed."""
    airflow.kill("scheduler", signal.SIGKILL)
    killed = time.monotonic()
    try:
        verdict = verify("health", timeout=15)
        elapsed = time.monotonic() - killed
        doc = airflow.health()
        [result] = verdict.results
        assert result.status == "fail", result.message
        assert "scheduler" in result.message
        age = datetime.now(UTC) - parse_health(doc).scheduler.latest_heartbeat
        request.node.user_properties.append((
            "note", f"SIGKILL: the check failed after {elapsed:.1f} s ({result.message}); "
                    f"Airflow then said {doc['scheduler']['status']} with a "
                    f"{age.total_seconds():.0f} s old heartbeat"))
        if age < timedelta(seconds=29):  # Airflow has not noticed the kill yet
            assert doc["scheduler"]["status"] == "healthy"
            problems, _ = assess_health(parse_health(doc), max_heartbeat_age=60)
            # About the scheduler only: on a loaded machine Airflow 3 may call its DAG
            # processor unhealthy too (its heartbeat a few seconds late), which is no news.
            assert [p for p in problems if p.startswith("scheduler")] == []
    finally:
        airflow.wait_exit("scheduler")
        restart(airflow, "scheduler")


def test_a_stopped_scheduler_fails_the_health_check(airflow, verify) -> None:
    airflow.kill("scheduler", signal.SIGTERM)
    try:
        airflow.wait_exit("scheduler")
        verdict = verify("health", timeout=8)
        [result] = verdict.results
        assert result.status == "fail"
        # Depending on how long ago its last heartbeat was, Airflow says "unhealthy" or
        # still "healthy" with a stale heartbeat; the check fails on the scheduler either way.
        assert re.search(r"scheduler (is unhealthy|heartbeat is \d+ s old)", result.message), \
            result.message
    finally:
        restart(airflow, "scheduler")


def _stopped_component_fails_the_health_check(airflow, verify, process: str, key: str) -> None:
    """Stop ``process``, wait until /health calls ``key`` unhealthy; the check must fail."""
    airflow.kill(process, signal.SIGTERM)
    try:
        airflow.wait_exit(process)
        airflow.wait_for(lambda h: h[key]["status"] == "unhealthy", 60, f"{key} unhealthy")
        verdict = verify("health", timeout=8)
        [result] = verdict.results
        assert result.status == "fail"
        assert f"{key} is unhealthy" in result.message
    finally:
        restart(airflow, process)


def test_a_stopped_triggerer_fails_the_health_check(airflow, verify) -> None:
    _stopped_component_fails_the_health_check(airflow, verify, "triggerer", "triggerer")


def test_a_stopped_dag_processor_fails_the_health_check(airflow, verify) -> None:
    if airflow.major == 2:
        pytest.skip("Airflow 2 (as Astro runs it) has no standalone DAG processor")
    _stopped_component_fails_the_health_check(airflow, verify, "dag-processor", "dag_processor")
