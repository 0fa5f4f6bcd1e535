"""The simulator server: API shapes, auth, feed, durability, loopback-only binding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from simulators import SimHandle

from fleet_sim import lifecycle
from fleet_sim.apitoken import make_token
from fleet_sim.client import request
from fleet_sim.errors import NotRunning, SimError
from tests.simulator.helpers import AF2, airflow_get, deploy, platform_get, project

HEALTH_KEYS = {"metadatabase", "scheduler", "triggerer", "dag_processor"}


def test_airflow2_api_shapes(sim: SimHandle) -> None:
    errors = [
        {
            "filename": f"dags/bad_{i}.py",
            "stack_trace": "Traceback ...",
            "timestamp": "2024-05-01T12:00:00+00:00",
        }
        for i in range(5)
    ]
    sim.add_deployment("dep-1", "prod", runtime_version="11.7.0", import_errors=errors)
    status, health = airflow_get(sim, "dep-1", "v1", "/health")
    assert status == 200 and set(health) == HEALTH_KEYS
    assert health["metadatabase"] == {"status": "healthy"}
    assert set(health["scheduler"]) == {"status", "latest_scheduler_heartbeat"}
    assert health["scheduler"]["latest_scheduler_heartbeat"].endswith("+00:00")
    assert health["dag_processor"] == {"status": None, "latest_dag_processor_heartbeat": None}
    version = airflow_get(sim, "dep-1", "v1", "/version")[1]
    assert version["version"] == "2.9.3+astro.1"
    assert version["git_version"].startswith(".release:")  # a string, as real Airflow's
    _, page = airflow_get(sim, "dep-1", "v1", "/importErrors?limit=2&offset=3")
    assert page["total_entries"] == 5
    # Airflow reports the absolute path of the file it parsed.
    assert [e["filename"] for e in page["import_errors"]] == [
        "/usr/local/airflow/dags/dags/bad_3.py", "/usr/local/airflow/dags/dags/bad_4.py"]
    assert page["import_errors"][0]["timestamp"] == "2024-05-01T12:00:00.000000+00:00"
    one = airflow_get(
        sim, "dep-1", "v1", f"/importErrors/{page['import_errors'][0]['import_error_id']}"
    )
    assert one[1]["filename"] == "/usr/local/airflow/dags/dags/bad_3.py"
    assert airflow_get(sim, "dep-1", "v2", "/version")[0] == 404  # Airflow 2 has no /api/v2
    # /health and /version need no token, as on real Airflow 2; the rest does.
    assert airflow_get(sim, "dep-1", "v1", "/health", token="")[0] == 200
    assert airflow_get(sim, "dep-1", "v1", "/importErrors", token="")[0] == 401


def test_airflow3_api_shapes(sim: SimHandle) -> None:
    sim.add_deployment(
        "dep-3",
        "af3",
        runtime_version="3.0-7",
        import_errors=[{"filename": "dags/x.py", "stack_trace": "boom"}],
    )
    status, health = airflow_get(sim, "dep-3", "v2", "/monitor/health")
    assert status == 200 and set(health) == HEALTH_KEYS
    assert health["dag_processor"]["status"] == "healthy"
    assert health["dag_processor"]["latest_dag_processor_heartbeat"]
    assert airflow_get(sim, "dep-3", "v2", "/version")[1]["version"] == "3.0.0+astro.1"
    _, page = airflow_get(sim, "dep-3", "v2", "/importErrors")
    assert page["total_entries"] == 1
    assert page["import_errors"][0]["bundle_name"] == "dags-folder"
    assert airflow_get(sim, "dep-3", "v2", "/nope") == (404, {"detail": "Not Found"})
    _, dep = platform_get(sim, "/organizations/org-sim/deployments/dep-3")
    assert dep["webServerAirflowApiUrl"] == f"{sim.url[7:]}/d/dep-3/api/v2"


def test_platform_api_deployment_object(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod", workspace_id="ws-7", status="HIBERNATING")
    status, dep = platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    assert status == 200
    assert (dep["runtimeVersion"], dep["astroRuntimeVersion"], dep["airflowVersion"]) == (
        "12.4.0",
        "12.4.0",
        "2.10.0",
    )
    assert (dep["status"], dep["workspaceId"], dep["organizationId"]) == (
        "HIBERNATING",
        "ws-7",
        "org-sim",
    )
    assert not dep["webServerAirflowApiUrl"].startswith("http")
    assert dep["webServerUrl"].endswith("/d/dep-1?orgId=org-sim")
    _, listing = platform_get(sim, "/organizations/org-sim/deployments?workspaceIds=ws-7&limit=10")
    assert listing["totalCount"] == 1 and listing["deployments"][0]["id"] == "dep-1"
    _, orgs = platform_get(sim, "/organizations")
    assert orgs["organizations"][0]["product"] == "HOSTED"


def test_platform_api_requires_an_astro_token(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod")
    path = "/organizations/org-sim/deployments/dep-1"
    for token in ("", "garbage", make_token("org-sim", lifetime_seconds=-5)):
        status, body = platform_get(sim, path, token=token)
        assert status == 401 and body["message"].startswith("Unauthorized")
    assert platform_get(sim, path, token=make_token("org-other"))[0] == 403


def test_runtime_feed_and_deployment_options(sim: SimHandle) -> None:
    _, _, raw = request(sim.url, "GET", "/astronomer-runtime")
    import json

    feed = json.loads(raw)
    assert set(feed) == {"runtimeVersions", "runtimeVersionsV3"}
    meta = feed["runtimeVersions"]["11.8.0"]["metadata"]
    assert meta == {
        "airflowVersion": "2.9.3",
        "channel": "deprecated",
        "releaseDate": "2024-08-09",
        "defaultPythonVersion": "3.11",
        "yanked": False,
        "endOfMaintenance": "2025-10-31",
    }
    yanked = feed["runtimeVersions"]["9.0.0"]["metadata"]
    assert yanked["yanked"] is True and yanked["yankedReason"]
    observed = feed["runtimeVersionsV3"]["3.1-12"]
    assert observed == {
        "metadata": {"airflowVersion": "3.1.7", "channel": "stable"},
        "migrations": {},
    }
    assert "3.1-12" not in feed["runtimeVersions"] and "12.4.0" not in feed["runtimeVersionsV3"]
    _, options = platform_get(sim, "/organizations/org-sim/deployment-options")
    versions = [r["version"] for r in options["runtimeReleases"]]
    assert "12.4.0" in versions and "3.3-8" in versions and "9.0.0" not in versions


def test_restart_keeps_state(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    assert (
        deploy(
            sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1", "--description", "d"
        ).returncode
        == 0
    )
    sim.set_fault("dep-1", airflow_5xx=1)
    before = sim.deployment("dep-1")
    old_pid = sim.info.pid
    sim.restart()
    assert sim.info.pid != old_pid
    after = sim.deployment("dep-1")
    assert after["deploys"] == before["deploys"]
    assert after["runtime_version"] == "12.5.0"
    assert airflow_get(sim, "dep-1", "v1", "/health")[0] == 503  # the fault survived too


def test_server_refuses_non_loopback_hosts(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet_sim.astro.server",
            "--state-dir",
            str(tmp_path),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "binds loopback only" in result.stderr
    assert not (tmp_path / "server.json").exists()


def test_lifecycle_start_status_stop_reset(tmp_path: Path) -> None:
    state = tmp_path / "state"
    info = lifecycle.start(state, time_scale=0.5)
    try:
        assert info.url.startswith("http://127.0.0.1:")
        assert lifecycle.status(state) == info
        assert lifecycle.url_of(state) == info.url
        with pytest.raises(SimError, match="already running"):
            lifecycle.start(state)
        lifecycle.seed(
            info.url, [{"id": "x", "name": "x", "workspace_id": "w", "runtime_version": "12.4.0"}]
        )
        lifecycle.reset(info.url)
        _, _, raw = request(info.url, "GET", "/_sim/state")
        assert b'"deployments": []' in raw
    finally:
        assert lifecycle.stop(state) is True
    assert lifecycle.status(state) is None
    assert lifecycle.stop(state) is False
    with pytest.raises(NotRunning, match="no Astro simulator is running"):
        lifecycle.url_of(state)


def test_seed_refuses_bad_specs(sim: SimHandle) -> None:
    from fleet_sim.errors import InputError

    with pytest.raises(InputError, match="status: expected one of"):
        sim.add_deployment("dep-1", "prod", status="GREEN")
    with pytest.raises(InputError, match="colour: unknown field"):
        sim.add_deployment("dep-1", "prod", colour="red")


def test_platform_requests_answer_429_on_demand(sim: SimHandle) -> None:
    # Astro's error shape (../shared/reference/astro-cli.md §9.1) with Retry-After (RFC
    # 9110 §10.2.3); its rate limits are documented per token, its 429 body is not.
    sim.add_deployment("dep-1", "one")
    token = sim.env["ASTRO_API_TOKEN"]
    listing = "/v1/organizations/org-sim/deployments?workspaceIds=ws-1"
    assert sim.throttle(2, retry_after=7, kind="platform: list Deployments")["count"] == 2
    status, headers, body = request(sim.url, "GET", listing, token=token)
    assert (status, headers["retry-after"]) == (429, "7")
    assert json.loads(body)["statusCode"] == 429 and json.loads(body)["message"]
    # Another kind is not throttled; the count is per throttled request.
    assert platform_get(sim, "/organizations/org-sim/deployments/dep-1")[0] == 200
    assert request(sim.url, "GET", listing, token=token)[0] == 429
    assert request(sim.url, "GET", listing, token=token)[0] == 200
    sim.throttle(1)  # any platform request; no Retry-After
    status, headers, _ = request(sim.url, "GET", listing, token=token)
    assert status == 429 and "retry-after" not in headers
    assert sim.requests()["platform: list Deployments"] == 4  # a 429 is a request served
    with pytest.raises(SimError, match="throttle.count: expected a whole number"):
        sim.throttle(-1)


def test_requests_are_counted_by_kind(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    before = lifecycle.admin(sim.url, "GET", "/_sim/requests")
    platform_get(sim, "/organizations/org-sim/deployments?workspaceIds=ws-1")
    platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    platform_get(sim, "/organizations/org-sim/deployments/dep-1/deploys")
    airflow_get(sim, "dep-1", "v1", "/version")
    after = lifecycle.admin(sim.url, "GET", "/_sim/requests")
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert grown == {"platform: list Deployments": 1, "platform: get Deployment": 2,
                     "platform: GET deploys": 1, "airflow": 1}
