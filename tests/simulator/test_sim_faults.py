"""Every injectable fault, through the real astro-sim process and real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from simulators import SimHandle

from fleet_sim import lifecycle
from fleet_sim.astro.faults import load_faults_file
from fleet_sim.client import SimConnectionError, request
from fleet_sim.errors import InputError
from tests.simulator.helpers import AF2, airflow_get, deploy, platform_get, project, wait_status


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return project(tmp_path, AF2.format(v="12.5.0"))


def test_deploy_error_is_one_shot(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", deploy_error="Internal server error: image rollout failed")
    failed = deploy(sim, proj, "dep-1")
    assert failed.returncode == 1
    assert failed.stderr == "Error: Internal server error: image rollout failed\n"
    assert "Pushing image to Astronomer registry" in failed.stdout
    assert "Deployed Image Tag" not in failed.stdout
    state = sim.deployment("dep-1")
    assert (state["runtime_version"], state["deploy_count"]) == ("12.4.0", 0)
    assert state["deploy_attempts"][0]["status"] == "FAILED"
    assert deploy(sim, proj, "dep-1").returncode == 0
    assert sim.deployment("dep-1")["runtime_version"] == "12.5.0"


def test_persistent_deploy_error_keeps_failing(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", deploy_error="boom", persistent=True)
    for _ in range(2):
        assert deploy(sim, proj, "dep-1").stderr == "Error: boom\n"
    sim.clear_faults("dep-1")
    assert deploy(sim, proj, "dep-1").returncode == 0


@pytest.mark.parametrize(
    ("kind", "tail"),
    [
        (
            "uncommitted",
            "Using an Astro API Token\nProject directory has uncommitted changes, use "
            "`astro deploy [deployment-id] -f` to force deploy.\n",
        ),
        (
            "workspace_mismatch",
            "Authenticated to Astro \n\nInvalid workspace id ws-1 was provided through the "
            "--workspace-id flag\n",
        ),
        (
            "no_dags_declined",
            "Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to "
            "deploy? (y/n) Canceling deploy...\n",
        ),
    ],
)
def test_forced_exit_zero_traps_change_nothing(
    sim: SimHandle, proj: Path, kind: str, tail: str
) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", deploy_noop=kind)
    trapped = deploy(sim, proj, "dep-1", "-f")
    assert (trapped.returncode, trapped.stderr) == (0, "")
    assert trapped.stdout.endswith(tail)
    assert sim.deployment("dep-1")["deploy_count"] == 0
    assert sim.deployment("dep-1")["runtime_version"] == "12.4.0"
    assert deploy(sim, proj, "dep-1").returncode == 0  # one-shot
    assert sim.deployment("dep-1")["deploy_count"] == 1


def test_slow_deploy_takes_longer(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", deploy_extra_seconds=800)  # 0.8 s at the fixture's time scale
    start = time.monotonic()
    assert deploy(sim, proj, "dep-1").returncode == 0
    assert time.monotonic() - start >= 0.8


def test_stuck_deploying_times_out_wait(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", stuck_deploying=True)
    result = deploy(sim, proj, "dep-1", "--wait", "--wait-time", "1m")
    assert result.returncode == 1
    assert result.stderr == "Error: timed out waiting for the Deployment to enter a Healthy state\n"
    sim.freeze_clock()
    sim.advance(3600)  # well past healthy_after_seconds (120)
    assert sim.deployment("dep-1")["status"] == "DEPLOYING"
    # The old image keeps serving while the rollout hangs.
    assert airflow_get(sim, "dep-1", "v1", "/version")[1]["version"] == "2.10.0+astro.1"


def test_unhealthy_after_deploy(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", unhealthy_after_deploy=True)
    assert deploy(sim, proj, "dep-1").returncode == 0
    assert wait_status(sim, "dep-1", "UNHEALTHY")["status"] == "UNHEALTHY"
    status, body = platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    assert (status, body["status"]) == (200, "UNHEALTHY")


def test_reported_runtime_differs_from_deployed(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="12.3.0")
    sim.set_fault("dep-1", reported_runtime_version="12.4.0")
    assert deploy(sim, proj, "dep-1").returncode == 0
    state = wait_status(sim, "dep-1", "HEALTHY")
    assert (state["runtime_version"], state["deployed_runtime_version"]) == ("12.4.0", "12.5.0")
    key = sim.run(
        "deployment",
        "inspect",
        "dep-1",
        "--workspace-id",
        "ws-1",
        "--key",
        "configuration.runtime_version",
    )
    assert key.stdout == "12.4.0\n"


def test_new_import_errors_after_deploy(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment(
        "dep-1", "prod", import_errors=[{"filename": "dags/old.py", "stack_trace": "x"}]
    )
    sim.set_fault("dep-1", import_errors_after_deploy=3)
    assert airflow_get(sim, "dep-1", "v1", "/importErrors")[1]["total_entries"] == 1
    assert deploy(sim, proj, "dep-1").returncode == 0
    wait_status(sim, "dep-1", "HEALTHY")
    status, body = airflow_get(sim, "dep-1", "v1", "/importErrors?limit=2&offset=0")
    assert status == 200
    assert body["total_entries"] == 4
    assert len(body["import_errors"]) == 2
    assert set(body["import_errors"][0]) == {
        "import_error_id",
        "timestamp",
        "filename",
        "stack_trace",
    }


def test_scheduler_heartbeat_goes_stale(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", scheduler_stale_after_deploy=True)
    assert deploy(sim, proj, "dep-1").returncode == 0
    wait_status(sim, "dep-1", "HEALTHY")
    _, health = airflow_get(sim, "dep-1", "v1", "/health")
    assert health["scheduler"]["status"] == "unhealthy"
    beat = datetime.fromisoformat(health["scheduler"]["latest_scheduler_heartbeat"])
    assert (datetime.now(UTC) - beat).total_seconds() > 300
    assert health["triggerer"]["status"] == "healthy"


def test_airflow_api_answers_5xx_for_the_first_calls(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", airflow_5xx=2, airflow_5xx_status=502)
    codes = [airflow_get(sim, "dep-1", "v1", "/health")[0] for _ in range(3)]
    assert codes == [502, 502, 200]
    assert "airflow_5xx" not in sim.deployment("dep-1")["faults"]


def test_airflow_api_hangs_without_blocking_others(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.set_fault("dep-1", airflow_hang=1)
    start = time.monotonic()
    with pytest.raises(SimConnectionError):
        airflow_get(sim, "dep-1", "v1", "/health", timeout=0.5)
    assert time.monotonic() - start >= 0.5
    status, _ = platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    assert status == 200
    assert airflow_get(sim, "dep-1", "v1", "/health", timeout=2)[0] == 200


def test_missing_deployment_answers_404_everywhere(sim: SimHandle, proj: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.add_deployment("dep-2", "other")
    sim.set_fault("dep-1", missing=True)
    status, body = platform_get(sim, "/organizations/org-sim/deployments/dep-1")
    assert status == 404 and body["message"] == "Deployment not found" and body["statusCode"] == 404
    assert airflow_get(sim, "dep-1", "v1", "/health")[0] == 404
    assert deploy(sim, proj, "dep-1").stderr == "Error: Deployment not found\n"
    inspect = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-1")
    assert inspect.stderr.startswith(
        "Error: the Deployment specified was not found in this workspace."
    )
    listed = sim.run("deployment", "list", "--workspace-id", "ws-1", "--json")
    assert '"dep-1"' not in listed.stdout and '"dep-2"' in listed.stdout


def test_set_fault_refuses_unknown_fields(sim: SimHandle) -> None:
    with pytest.raises(InputError, match="deploy_eror: unknown fault field"):
        sim.set_fault("dep-1", deploy_eror="typo")
    with pytest.raises(InputError, match="airflow_5xx: expected a whole number"):
        sim.set_fault("dep-1", airflow_5xx=-1)


def test_faults_file_is_installed_at_start(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  dep-1:\n    airflow_5xx: 1\n    missing: false\n")
    info = lifecycle.start(tmp_path / "state", time_scale=0.001, faults=faults)
    try:
        lifecycle.seed(
            info.url,
            [{"id": "dep-1", "name": "p", "workspace_id": "ws-1", "runtime_version": "12.4.0"}],
        )
        env = lifecycle.sim_env(info.url)
        status, _, _ = request(
            info.url, "GET", "/d/dep-1/api/v1/health", token=env["ASTRO_API_TOKEN"]
        )
        assert status == 503
    finally:
        lifecycle.stop(tmp_path / "state")


def test_bad_faults_file_names_file_line_and_key(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  dep-1:\n    airflow_5xx: 1\n    deploy_noop: sometimes\n")
    with pytest.raises(InputError) as err:
        load_faults_file(faults)
    assert str(err.value).startswith(f"{faults}:4: faults.dep-1.deploy_noop: expected one of:")
    with pytest.raises(InputError):
        lifecycle.start(tmp_path / "state", faults=faults)
    assert lifecycle.status(tmp_path / "state") is None
