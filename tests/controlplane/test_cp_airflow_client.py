"""The Airflow API client against a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from upgrade.controlplane.airflow import AirflowAPI, AirflowEndpoint, parse_health
from upgrade.controlplane.http import RetryPolicy
from upgrade.errors import (
    AirflowAPIError,
    AirflowAuthError,
    AirflowNotFound,
    AirflowResponseError,
    AirflowTimeout,
    AirflowUnavailable,
)

AIRFLOW = Path(__file__).parent / "recorded" / "airflow"
TOKEN = "eyJhbGciOiJub25lIn0.eyJwZXJtaXNzaW9ucyI6WyJ3b3Jrc3BhY2VJZDp3cyJdfQ."
FAST = RetryPolicy(attempts=4, backoff=0.01, backoff_max=0.05, total=10.0, jitter=False)


def body(name: str, version: str = "2.10.5") -> dict:
    """The body real Airflow ``version`` answered (tests/contract/record.py recorded it)."""
    return json.loads((AIRFLOW / version / f"{name}.json").read_text())["body"]


def recorded(name: str, version: str = "2.10.5") -> tuple[int, dict]:
    """(status, body) real Airflow answered."""
    doc = json.loads((AIRFLOW / version / f"{name}.json").read_text())
    return doc["status"], doc["body"]


def api(**kw) -> AirflowAPI:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout", 2.0)
    return AirflowAPI(env={"ASTRO_API_TOKEN": TOKEN}, **kw)


def endpoint(server, version: int = 1, dep: str = "dep-1") -> AirflowEndpoint:
    return AirflowEndpoint.from_api_url(
        server.api_url(dep, version), deployment_id=dep, scheme="http"
    )


# ------------------------------------------------------------------ URL handling


@pytest.mark.parametrize(
    ("url", "scheme", "root", "version"),
    [
        ("org.astronomer.run/d8fe2wmv/api/v1", "https", "https://org.astronomer.run/d8fe2wmv", 1),
        ("org.astronomer.run/d8fe2wmv/api/v2/", "https", "https://org.astronomer.run/d8fe2wmv", 2),
        ("127.0.0.1:8123/d/dep-1/api/v2", "http", "http://127.0.0.1:8123/d/dep-1", 2),
        ("https://host.example/api/v1", "http", "https://host.example", 1),
    ],
)
def test_endpoint_from_astro_url(url, scheme, root, version) -> None:
    ep = AirflowEndpoint.from_api_url(url, deployment_id="d", scheme=scheme)
    assert (ep.root, ep.api_version) == (root, version)
    assert ep.health_path == ("/health" if version == 1 else "/monitor/health")


@pytest.mark.parametrize("url", ["", "org.astronomer.run/d8fe2wmv", "ftp://h/api/v1", "h/api/v3"])
def test_endpoint_refuses_urls_without_api_version(url) -> None:
    with pytest.raises(AirflowAPIError, match="Deployment dep-9"):
        AirflowEndpoint.from_api_url(url, deployment_id="dep-9")


# ------------------------------------------------------------- typed, v1 and v2


def test_airflow2_health_version_import_errors(http_server) -> None:
    http_server.script("/d/dep-1/api/v1/health", ("json", 200, body("health")))
    http_server.script("/d/dep-1/api/v1/version", ("json", 200, body("version")))
    http_server.script("/d/dep-1/api/v1/importErrors", ("json", 200, body("import_errors")))
    ep = endpoint(http_server, 1)
    with api() as client:
        health = client.health(ep)
        version = client.version(ep)
        errors = client.import_errors(ep)
    assert health.healthy
    assert health.metadatabase == "healthy"
    stamp = body("health")["scheduler"]["latest_scheduler_heartbeat"]
    assert stamp.endswith("+00:00")
    assert health.scheduler.latest_heartbeat == datetime.fromisoformat(stamp)
    assert health.dag_processor.status is None and health.dag_processor.latest_heartbeat is None
    assert (version.raw, version.version, version.local) == ("2.10.5", "2.10.5", None)
    assert version.git_version.startswith(".release:")
    by_name = {e.filename.rsplit("/", 1)[1]: e for e in errors}
    assert sorted(by_name) == ["broken_import.py", "broken_syntax.py"]
    assert all(e.filename.startswith("/") for e in errors)  # absolute, as Airflow parsed them
    assert "ModuleNotFoundError" in by_name["broken_import.py"].stack_trace
    assert errors[0].bundle_name is None
    seen = http_server.seen[0]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


def test_airflow3_health_version_import_errors(http_server) -> None:
    base = "/d/dep-3/api/v2"
    af3 = "3.0.6"
    http_server.script(f"{base}/monitor/health", ("json", 200, body("health", af3)))
    http_server.script(f"{base}/version", ("json", 200, body("version", af3)))
    http_server.script(f"{base}/importErrors", ("json", 200, body("import_errors", af3)))
    ep = endpoint(http_server, 2, "dep-3")
    with api() as client:
        health = client.health(ep)
        version = client.version(ep)
        errors = client.import_errors(ep)
    assert health.healthy
    stamp = body("health", af3)["dag_processor"]["latest_dag_processor_heartbeat"]
    assert stamp.endswith("+00:00")  # health uses +00:00 on Airflow 3 too
    assert health.dag_processor.latest_heartbeat == datetime.fromisoformat(stamp)
    assert version.version == "3.0.6" and version.local is None
    assert [e.bundle_name for e in errors] == ["dags-folder", "dags-folder"]
    assert body("import_errors", af3)["import_errors"][0]["timestamp"].endswith("Z")
    assert all(e.timestamp is not None and e.filename.startswith("/") for e in errors)


def test_extra_health_keys_and_redacted_traces_are_tolerated(http_server) -> None:
    """Astro's Airflow 3 may add per-instance detail; the client reads what it needs."""
    doc = body("health", "3.0.6")
    doc["scheduler"]["detailed_status"] = "healthy"
    doc["scheduler"]["instances"] = [{"hostname": "scheduler-0", "status": "healthy"}]
    http_server.script("/d/dep-3/api/v2/monitor/health", ("json", 200, doc))
    with api() as client:
        assert client.health(endpoint(http_server, 2, "dep-3")).healthy


@pytest.mark.parametrize("version", ["2.10.5", "3.0.6"])
def test_stopped_components_as_real_airflow_reports_them(version) -> None:
    stopped = parse_health(body("health_scheduler_stopped", version))
    assert not stopped.healthy
    assert stopped.scheduler.status == "unhealthy"
    assert stopped.scheduler.latest_heartbeat is not None  # frozen, not gone
    triggerer = parse_health(body("health_triggerer_stopped", version))
    assert triggerer.triggerer.status == "unhealthy" and not triggerer.healthy


def test_unhealthy_scheduler_and_stale_heartbeat() -> None:
    health = parse_health(body("health_scheduler_stopped"))
    beat = health.scheduler.latest_heartbeat
    assert not health.healthy
    assert "scheduler" in health.stale(timedelta(minutes=5), now=beat + timedelta(minutes=6))
    fresh = parse_health(body("health"))
    now = fresh.scheduler.latest_heartbeat + timedelta(seconds=3)
    assert fresh.stale(timedelta(minutes=5), now=now) == []


def test_health_with_a_bad_heartbeat_is_a_response_error(http_server) -> None:
    doc = body("health")
    doc["scheduler"]["latest_scheduler_heartbeat"] = "yesterday"
    http_server.script("/d/dep-1/api/v1/health", ("json", 200, doc))
    with api() as client, pytest.raises(AirflowResponseError, match="dep-1"):
        client.health(endpoint(http_server))


# ------------------------------------------------------------------- pagination


def _pages(total: int, cap: int | None = None):
    entries = [
        {"import_error_id": i, "filename": f"dags/d{i}.py", "stack_trace": "boom",
         "timestamp": "2025-01-01T00:00:00+00:00"}
        for i in range(total)
    ]

    def page(query):
        limit = int(query.get("limit", ["100"])[0])
        if cap:
            limit = min(limit, cap)  # servers clamp the limit (maximum_page_limit)
        offset = int(query.get("offset", ["0"])[0])
        return ("json", 200, {"import_errors": entries[offset:offset + limit],
                              "total_entries": total})

    return page


def test_import_errors_follow_total_entries_across_pages(http_server) -> None:
    path = "/d/dep-1/api/v1/importErrors"
    http_server.script(path, _pages(250))
    with api() as client:
        errors = client.import_errors(endpoint(http_server), page_size=100)
    assert [e.import_error_id for e in errors] == list(range(250))
    offsets = [s.query["offset"] for s in http_server.requests_to(path)]
    assert offsets == [["0"], ["100"], ["200"]]


def test_import_errors_when_the_server_clamps_the_page_size(http_server) -> None:
    path = "/d/dep-1/api/v1/importErrors"
    http_server.script(path, _pages(120, cap=50))
    with api() as client:
        errors = client.import_errors(endpoint(http_server), page_size=100)
    assert len(errors) == 120 and len({e.import_error_id for e in errors}) == 120
    assert len(http_server.requests_to(path)) == 3


def test_import_errors_stop_on_an_empty_page(http_server) -> None:
    # A server that over-reports total_entries must not be paged forever.
    path = "/d/dep-1/api/v1/importErrors"
    http_server.script(
        path,
        ("json", 200, {"import_errors": [{"import_error_id": 1}], "total_entries": 9}),
        ("json", 200, {"import_errors": [], "total_entries": 9}),
    )
    with api() as client:
        assert len(client.import_errors(endpoint(http_server))) == 1
    assert len(http_server.requests_to(path)) == 2


# -------------------------------------------------------------- retries, errors


def test_retries_5xx_then_succeeds(http_server) -> None:
    path = "/d/dep-1/api/v1/version"
    http_server.script(
        path,
        ("json", 503, {"detail": "unavailable"}),
        ("raw", 502, "<html>Bad Gateway</html>"),
        ("json", 200, body("version")),
    )
    with api() as client:
        assert client.version(endpoint(http_server)).version == "2.10.5"
    assert len(http_server.requests_to(path)) == 3


def test_retries_a_connection_reset(http_server) -> None:
    path = "/d/dep-1/api/v1/health"
    http_server.script(path, ("reset",), ("json", 200, body("health")))
    with api() as client:
        assert client.health(endpoint(http_server)).healthy
    assert len(http_server.requests_to(path)) == 2


def test_gives_up_after_the_bounded_number_of_attempts(http_server, caplog) -> None:
    path = "/d/dep-1/api/v1/health"
    http_server.script(path, ("json", 500, {"title": "Internal Server Error"}))
    policy = RetryPolicy(attempts=3, backoff=0.1, backoff_max=1.0, total=30.0, jitter=False)
    caplog.set_level(logging.INFO, logger="upgrade.controlplane.http")
    with api(retry=policy) as client, pytest.raises(AirflowUnavailable) as info:
        client.health(endpoint(http_server))
    assert len(http_server.requests_to(path)) == 3
    # Waited 0.1 then 0.2 (exponential), as it logs before each wait, and no more.
    waits = [r.getMessage().split("retrying in ")[1] for r in caplog.records
             if "retrying in" in r.getMessage()]
    assert waits == ["0.10s (attempt 2 of 3)", "0.20s (attempt 3 of 3)"]
    assert info.value.attempts == 3 and info.value.status_code == 500
    assert "dep-1" in str(info.value) and "Internal Server Error" in str(info.value)


def test_total_time_bounds_the_retries(http_server) -> None:
    http_server.script("/d/dep-1/api/v1/health", ("json", 503, {}))
    policy = RetryPolicy(attempts=1000, backoff=0.2, backoff_max=0.4, total=1.0, jitter=False)
    with api(retry=policy) as client, pytest.raises(AirflowUnavailable) as info:
        client.health(endpoint(http_server))
    # Bounded work, whatever the machine's speed: the waits 0.2 + 0.4 s fit in the 1 s total
    # and a third 0.4 s would not, so at most 3 of the 1,000 attempts are made.
    assert 1 <= len(http_server.requests_to("/d/dep-1/api/v1/health")) <= 3
    assert info.value.attempts == len(http_server.requests_to("/d/dep-1/api/v1/health"))


def test_jittered_backoff_stays_within_bounds() -> None:
    policy = RetryPolicy(backoff=1.0, backoff_max=4.0)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        for _ in range(50):
            assert cap / 2 <= policy.delay(attempt) <= cap


@pytest.mark.parametrize("version, name", [("2.10.5", "import_errors_bad_token"),
                                           ("3.0.6", "import_errors_bad_token")])
def test_a_refused_token_is_immediate_and_names_the_deployment(http_server, version,
                                                               name) -> None:
    status, answer = recorded(name, version)
    path = "/d/dep-7/api/v2/importErrors"
    http_server.script(path, ("json", status, answer))
    with api() as client, pytest.raises(AirflowAuthError) as info:
        client.import_errors(endpoint(http_server, 2, "dep-7"))
    assert len(http_server.requests_to(path)) == 1  # never retried
    msg = str(info.value)
    assert msg.startswith(f"Deployment dep-7: the token was refused ({status}")
    assert "Check that $ASTRO_API_TOKEN is a valid, unexpired API token" in msg
    if version == "3.0.6":
        assert "Invalid JWT token" in msg
    assert TOKEN not in msg
    assert info.value.status_code == status


@pytest.mark.parametrize("version", ["2.10.5", "3.0.6"])
def test_no_token_says_so_instead_of_blaming_the_token(http_server, version) -> None:
    status, answer = recorded("import_errors_no_token", version)
    http_server.script("/d/dep-7/api/v1/importErrors", ("json", status, answer))
    with AirflowAPI(env={}, retry=FAST) as client, pytest.raises(AirflowAuthError) as info:
        client.import_errors(endpoint(http_server, 1, "dep-7"))
    msg = str(info.value)
    assert "no token was sent (set $ASTRO_API_TOKEN to an API token with access" in msg
    assert "refused" not in msg
    assert status == 401


def test_not_found_is_clear(http_server) -> None:
    with api() as client, pytest.raises(AirflowNotFound, match="dep-1.*404"):
        client.version(endpoint(http_server))  # nothing scripted: 404


def test_other_4xx_is_not_retried(http_server) -> None:
    path = "/d/dep-1/api/v1/version"
    http_server.script(path, ("json", 400, {"detail": "bad request"}))
    with api() as client, pytest.raises(AirflowAPIError, match="400"):
        client.version(endpoint(http_server))
    assert len(http_server.requests_to(path)) == 1


def test_hang_times_out_within_the_bound(http_server) -> None:
    path = "/d/dep-1/api/v1/health"
    http_server.script(path, ("hang", 600))  # until the test ends: only the time-out helps
    policy = RetryPolicy(attempts=2, backoff=0.05, backoff_max=0.05, total=10.0, jitter=False)
    with api(timeout=0.3, retry=policy) as client, pytest.raises(AirflowTimeout) as info:
        client.health(endpoint(http_server))
    assert len(http_server.requests_to(path)) == 2
    assert "timed out" in str(info.value) and "dep-1" in str(info.value)


def test_non_json_success_is_a_response_error(http_server) -> None:
    http_server.script("/d/dep-1/api/v1/version", ("raw", 200, "<html>login</html>"))
    with api() as client, pytest.raises(AirflowResponseError):
        client.version(endpoint(http_server))


def test_token_echoed_by_the_server_is_redacted(http_server) -> None:
    http_server.script(
        "/d/dep-1/api/v1/health", ("json", 500, {"detail": f"bad header Bearer {TOKEN}"})
    )
    with api() as client, pytest.raises(AirflowUnavailable) as info:
        client.health(endpoint(http_server))
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_without_a_token_no_authorization_header_is_sent(http_server) -> None:
    http_server.script("/d/dep-1/api/v1/version", ("json", 200, body("version")))
    with AirflowAPI(env={}, retry=FAST) as client:
        client.version(endpoint(http_server))
    assert "Authorization" not in http_server.seen[0].headers


# ------------------------------------------------------------ pooling, threads


def test_one_pooled_connection_is_reused(http_server) -> None:
    http_server.script("/d/dep-1/api/v1/version", ("json", 200, body("version")))
    with api() as client:
        for _ in range(10):
            client.version(endpoint(http_server))
    assert len({s.client_port for s in http_server.seen}) == 1


def test_safe_from_worker_threads(http_server) -> None:
    for dep in ("a", "b", "c", "d"):
        doc = {"version": f"2.10.{ord(dep) - 96}+astro.1", "git_version": None}
        http_server.script(f"/d/{dep}/api/v1/version", ("json", 200, doc))
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    with api() as client:

        def work(dep: str) -> None:
            try:
                ep = endpoint(http_server, 1, dep)
                results[dep] = [client.version(ep).version for _ in range(10)]
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(d,)) for d in "abcd"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert results == {d: [f"2.10.{i}"] * 10 for i, d in enumerate("abcd", start=1)}
    assert len(http_server.seen) == 40


# ------------------------------------------------------------------------ DAG runs


@pytest.mark.parametrize("version, api_version", [("2.10.5", 1), ("3.0.6", 2)])
def test_dag_run_calls_parse_what_real_airflow_answered(http_server, version,
                                                        api_version) -> None:
    base = f"/d/dep-1/api/v{api_version}/dags/canary_ok"
    run = "recorded__canary_ok"
    http_server.script(base, ("json", 200, body("dag", version)),
                       ("json", 200, body("dag_unpause", version)))
    http_server.script(f"{base}/dagRuns", ("json", 200, body("dag_run_trigger", version)))
    http_server.script(f"{base}/dagRuns/{run}", ("json", 200, body("dag_run_success", version)))
    fail = "/d/dep-1/api/v{}/dags/canary_fail/dagRuns/recorded__canary_fail/taskInstances"
    http_server.script(fail.format(api_version),
                       ("json", 200, body("task_instances_failed", version)))
    ep = endpoint(http_server, api_version)
    with api() as client:
        dag = client.dag(ep, "canary_ok")
        unpaused = client.set_paused(ep, "canary_ok", False)
        started = client.trigger_dag_run(ep, "canary_ok", run, {"canary": True})
        done = client.dag_run(ep, "canary_ok", run)
        tasks = client.task_instances(ep, "canary_fail", "recorded__canary_fail")
    assert dag.is_paused and not unpaused.is_paused
    assert (started.run_id, started.state) == (run, "queued")
    assert done.state == "success" and done.end_date is not None
    assert [(t.task_id, t.state, t.try_number) for t in tasks] == [
        ("setup", "success", 1), ("boom", "failed", 1), ("after", "upstream_failed", 0)]
    patch, trigger = http_server.seen[1], http_server.seen[2]
    assert (patch.method, patch.query) == ("PATCH", {"update_mask": ["is_paused"]})
    assert json.loads(patch.body) == {"is_paused": False}
    sent = json.loads(trigger.body)
    assert sent["dag_run_id"] == run and sent["conf"] == {"canary": True}
    # Airflow 3.0 answers 422 without the key (recorded); Airflow 2 takes none.
    assert ("logical_date" in sent) == (api_version == 2) and sent.get("logical_date") is None


@pytest.mark.parametrize("version, api_version", [("2.10.5", 1), ("3.0.6", 2)])
def test_a_retried_trigger_that_conflicts_returns_the_run_it_made(http_server, version,
                                                                  api_version) -> None:
    base = f"/d/dep-1/api/v{api_version}/dags/canary_ok/dagRuns"
    status, conflict = recorded("dag_run_conflict", version)
    http_server.script(base, ("json", 503, {"detail": "busy"}), ("json", status, conflict))
    http_server.script(f"{base}/recorded__canary_ok",
                       ("json", 200, body("dag_run_queued", version)))
    with api() as client:
        run = client.trigger_dag_run(endpoint(http_server, api_version), "canary_ok",
                                     "recorded__canary_ok")
    assert run.run_id == "recorded__canary_ok"
    assert len(http_server.requests_to(base)) == 2


def test_fastapi_error_details_are_read_as_text(http_server) -> None:
    status, answer = recorded("dag_run_trigger_without_logical_date", "3.0.6")
    http_server.script("/d/dep-1/api/v2/dags/x/dagRuns", ("json", status, answer))
    with api() as client, pytest.raises(AirflowAPIError) as info:
        client.trigger_dag_run(endpoint(http_server, 2), "x", "r")
    assert "answered 422: body.logical_date: Field required" in str(info.value)


def test_log_and_run_urls_in_each_ui() -> None:
    v1 = AirflowEndpoint.from_api_url("org.astronomer.run/d1/api/v1", deployment_id="d")
    v2 = AirflowEndpoint.from_api_url("org.astronomer.run/d1/api/v2", deployment_id="d")
    run = "manual__2025-01-01T00:00:00+00:00"
    assert v1.task_log_url("etl", run, "load", try_number=2) == (
        "https://org.astronomer.run/d1/dags/etl/grid?dag_run_id=manual__2025-01-01T00%3A00%3A00"
        "%2B00%3A00&task_id=load&tab=logs")
    assert v2.task_log_url("etl", run, "load", try_number=2, map_index=3) == (
        "https://org.astronomer.run/d1/dags/etl/runs/manual__2025-01-01T00%3A00%3A00%2B00%3A00"
        "/tasks/load/mapped/3?try_number=2")
    assert v2.run_url("etl", "r1") == "https://org.astronomer.run/d1/dags/etl/runs/r1"
