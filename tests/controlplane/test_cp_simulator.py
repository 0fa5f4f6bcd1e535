"""The real driver against the simulator: spawns ``astro-sim``, parses its output, calls the
simulated Airflow API over HTTP. One test per simulator fault, asserting the typed outcome."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from simulators import make_astro_project
from support import NotSettled, wait_healthy

from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.inventory_loader import load_inventory
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import (
    EXIT_POLICY,
    AirflowTimeout,
    AirflowUnavailable,
    AstroTimeout,
    DeployFailed,
    DeploymentNotFound,
    DeployNoop,
    DeployRefused,
    UpgradeError,
)

AF2_IMAGE = "quay.io/astronomer/astro-runtime"
AF3_IMAGE = "astrocrpublic.azurecr.io/runtime"


def config(sim) -> ControlPlaneConfig:
    """Production code path; only API URL, binary, env and scheme differ (plus test-sized
    timings)."""
    return sim.control_plane(
        deploy_timeout=30,
        inspect_timeout=15,
        kill_grace=1,
        http_timeout=1.0,
        http_connect_timeout=1.0,
        http_retries=2,
        http_backoff=0.02,
        http_backoff_max=0.1,
        http_total_timeout=15,
        wait_timeout=10,
        poll_interval=0.02,
    )


@pytest.fixture
def cp(sim):
    with ControlPlane(config(sim)) as plane:
        yield plane


def project(tmp_path: Path, tag: str, image: str = AF2_IMAGE) -> Path:
    return make_astro_project(tmp_path / f"repo-{tag}", f"FROM {image}:{tag}\n")


def deploy_and_settle(cp, sim, tmp_path, dep="dep-1", tag="12.5.0", ws="ws-1", image=AF2_IMAGE):
    outcome = cp.deploy(dep, ws, project(tmp_path, tag, image), f"fleet rollout r-1 to {tag}")
    return outcome, wait_healthy(cp, dep, ws, image_tag=outcome.image_tag)


# ------------------------------------------------------------------- the happy path


def test_deploy_success_end_to_end(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "analytics-prod", runtime_version="12.4.0")
    outcome, info = deploy_and_settle(cp, sim, tmp_path)
    assert outcome.image_tag and outcome.image_tag.startswith("deploy-")
    assert outcome.deployment_url == "https://cloud.astronomer.io/ws-1/deployments/dep-1"
    state = sim.deployment("dep-1")
    assert [d["description"] for d in state["deploys"]] == ["fleet rollout r-1 to 12.5.0"]
    assert state["deploys"][0]["image_tag"] == outcome.image_tag
    assert (info.status, info.runtime_version, info.image_tag) == (
        "HEALTHY", "12.5.0", outcome.image_tag
    )
    assert info.airflow_api_url.endswith("/api/v1") and "://" not in info.airflow_api_url
    health = cp.airflow_health(info)
    assert health.healthy and health.stale(timedelta(minutes=5)) == []
    version = cp.airflow_version(info)
    assert version.version == info.airflow_version and version.local.startswith("astro.")
    assert cp.import_errors(info) == []
    assert [s.id for s in cp.list("ws-1")] == ["dep-1"]
    assert "dep-1" in {s.id for s in cp.list_all("ws-1")}


def test_airflow3_deployment_uses_api_v2(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-3", "ml", runtime_version="3.0-7")
    _, info = deploy_and_settle(cp, sim, tmp_path, dep="dep-3", tag="3.1-12", image=AF3_IMAGE)
    assert info.runtime_version == "3.1-12"
    assert info.airflow_api_url.endswith("/api/v2")
    assert cp.airflow_endpoint(info).api_version == 2
    assert cp.airflow_health(info).healthy
    assert cp.airflow_version(info).version.startswith("3.1")


def test_the_simulator_is_reached_through_configuration_alone(sim, tmp_path) -> None:
    """An inventory's control_plane keys (API URL, astro binary, scheme, environment) are
    all the product knows of the simulator: status through the platform API, inspect through
    astro-sim, health through the Airflow API over http."""
    sim.add_deployment("dep-1", "one")
    settings = sim.control_plane_settings(http_retries=1)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"target": "12.4", "control_plane": settings,
                                         "repos": {}}))
    loaded = load_inventory(inventory).control_plane
    assert loaded == sim.control_plane(http_retries=1)
    with ControlPlane(loaded) as plane:
        assert plane.platform is not None and plane.platform.base_url == f"{sim.url}/v1"
        info = plane.status("dep-1", "ws-1")
        assert info.name == plane.inspect("dep-1", "ws-1").name == "one"
        assert plane.airflow_health(info).healthy


# ------------------------------------------------------------------ deploy faults


def test_deploy_error_fault(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", deploy_error="image push rejected by registry")
    with pytest.raises(DeployFailed) as info:
        cp.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")
    assert "image push rejected by registry" in info.value.astro_message
    assert info.value.command_exit == 1
    assert sim.deployment("dep-1")["runtime_version"] == "12.4.0"


@pytest.mark.parametrize(
    ("trap", "reason"),
    [
        ("uncommitted", "uncommitted-changes"),
        ("workspace_mismatch", "workspace-mismatch"),
        ("no_dags_declined", "declined-prompt"),
    ],
)
def test_exit_zero_traps(cp, sim, tmp_path, trap, reason) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", deploy_noop=trap)
    with pytest.raises(DeployNoop) as info:
        cp.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")
    assert info.value.reason == reason
    assert info.value.command_exit == 0
    state = sim.deployment("dep-1")
    assert state["deploys"] == [] or all(d["status"] != "DEPLOYED" for d in state["deploys"])
    assert state["runtime_version"] == "12.4.0"


def test_real_workspace_mismatch_is_a_noop(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one", workspace_id="ws-1")
    with pytest.raises(DeployNoop) as info:
        cp.deploy("dep-1", "ws-2", project(tmp_path, "12.5.0"), "r")
    assert info.value.reason == "workspace-mismatch"
    assert "Invalid workspace id ws-2" in info.value.astro_message


def test_slow_deploy_times_out_and_is_killed(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", deploy_extra_seconds=60_000)  # a minute at the test time scale
    slow = ControlPlane(replace(cp.config, deploy_timeout=1.0, kill_grace=0.5))
    with slow, pytest.raises(AstroTimeout) as info:
        slow.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")
    assert "Building image..." in info.value.output
    assert sim.deployment("dep-1")["runtime_version"] == "12.4.0"


def test_stuck_deploying(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", stuck_deploying=True)
    sim.freeze_clock()
    outcome = cp.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")
    sim.advance(3600)  # an hour after the deploy, long past healthy_after_seconds (120)
    with pytest.raises(NotSettled) as info:
        wait_healthy(cp, "dep-1", "ws-1", image_tag=outcome.image_tag, timeout=0)
    assert info.value.last.status == "DEPLOYING"


def test_unhealthy_after_deploy(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", unhealthy_after_deploy=True)
    sim.freeze_clock()
    outcome = cp.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")
    sim.advance(3600)  # an hour after the deploy, long past healthy_after_seconds (120)
    with pytest.raises(NotSettled) as info:
        wait_healthy(cp, "dep-1", "ws-1", image_tag=outcome.image_tag, timeout=0)
    assert info.value.last.status == "UNHEALTHY"


def test_wrong_version_reported(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", reported_runtime_version="12.4.0")
    _, info = deploy_and_settle(cp, sim, tmp_path, tag="12.5.0")
    # Astro accepted 12.5.0 but reports 12.4.0: the driver reports what Astro says.
    assert info.runtime_version == "12.4.0"
    assert sim.deployment("dep-1")["deploys"][-1]["runtime_version"] == "12.5.0"


def test_new_import_errors_after_deploy(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", import_errors_after_deploy=3)
    _, info = deploy_and_settle(cp, sim, tmp_path)
    errors = cp.import_errors(info)
    assert len(errors) == 3
    assert len({e.import_error_id for e in errors}) == 3
    assert all(e.filename and e.stack_trace and e.timestamp for e in errors)


def test_many_import_errors_are_paged(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", import_errors_after_deploy=230)
    _, info = deploy_and_settle(cp, sim, tmp_path)
    assert len({e.import_error_id for e in cp.import_errors(info)}) == 230


def test_stale_scheduler_heartbeat(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", scheduler_stale_after_deploy=True)
    _, info = deploy_and_settle(cp, sim, tmp_path)
    health = cp.airflow_health(info)
    assert "scheduler" in health.stale(timedelta(minutes=5))
    assert health.scheduler.age() > timedelta(minutes=5)


# --------------------------------------------------------------- Airflow API faults


def test_api_5xx_then_recovery(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    info = cp.inspect("dep-1", "ws-1")
    sim.set_fault("dep-1", airflow_5xx=2)
    assert cp.airflow_health(info).healthy  # third attempt answers
    sim.set_fault("dep-1", airflow_5xx=10, airflow_5xx_status=502)
    with pytest.raises(AirflowUnavailable) as err:
        cp.airflow_version(info)
    assert err.value.status_code == 502 and err.value.attempts == 3
    assert "dep-1" in str(err.value)


def test_api_hang_times_out_then_recovers(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    info = cp.inspect("dep-1", "ws-1")
    quick = ControlPlane(replace(cp.config, http_timeout=0.4))
    with quick:
        # A hang lasts 300 s (the simulator's hang_seconds): only the client's time-out
        # can end each call before pytest's.
        sim.set_fault("dep-1", airflow_hang=1)
        assert quick.airflow_version(info).version  # first call hangs, the retry answers
        sim.set_fault("dep-1", airflow_hang=10)
        with pytest.raises(AirflowTimeout) as err:
            quick.airflow_health(info)
    assert err.value.attempts == 3


def test_api_survives_a_simulator_restart(cp, sim) -> None:
    sim.add_deployment("dep-1", "one")
    info = cp.inspect("dep-1", "ws-1")
    assert cp.airflow_health(info).healthy
    sim.restart()  # pooled connections to the old process are now dead
    assert cp.airflow_health(info).healthy


# --------------------------------------------------------- unknown and refused


def test_unknown_deployment(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    with pytest.raises(DeploymentNotFound) as err:
        cp.deploy("dep-nope", "ws-1", project(tmp_path, "12.5.0"), "r")
    assert "dep-nope" in str(err.value)
    with pytest.raises(DeploymentNotFound):
        cp.inspect("dep-nope", "ws-1")
    with pytest.raises(DeploymentNotFound):
        cp.inspect("dep-1", "ws-other")  # right id, wrong workspace


def test_missing_fault_looks_deleted(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.set_fault("dep-1", missing=True)
    with pytest.raises(DeploymentNotFound):
        cp.inspect("dep-1", "ws-1")
    with pytest.raises(DeploymentNotFound):
        cp.deploy("dep-1", "ws-1", project(tmp_path, "12.5.0"), "r")


def test_downgrade_refused_with_astros_exact_message(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one", runtime_version="12.5.0")
    with pytest.raises(DeployRefused) as err:
        cp.deploy("dep-1", "ws-1", project(tmp_path, "12.4.0"), "r")
    refusal = err.value
    assert refusal.reason == "downgrade" and refusal.current_version == "12.5.0"
    assert refusal.astro_message == (
        "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version "
        "to 12.5.0 or higher in your Dockerfile"
    )
    assert refusal.exit_code == EXIT_POLICY and refusal.command_exit == 1
    assert sim.deployment("dep-1")["runtime_version"] == "12.5.0"


def test_airflow3_needs_runtime_12_first(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one", runtime_version="11.8.0")
    with pytest.raises(DeployRefused) as err:
        cp.deploy("dep-1", "ws-1", project(tmp_path, "3.0-7", AF3_IMAGE), "r")
    assert err.value.reason == "af3-minimum" and err.value.minimum_version == "12.0.0"


def test_unsupported_version_lists_the_supported_ones(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    sim.configure(runtime_releases=["12.4.0", "12.5.0"])
    with pytest.raises(DeployRefused) as err:
        cp.deploy("dep-1", "ws-1", project(tmp_path, "12.6.0"), "r")
    assert err.value.reason == "unsupported"
    assert err.value.supported_versions == ("12.4.0", "12.5.0")


def test_not_an_astro_runtime_image(cp, sim, tmp_path) -> None:
    sim.add_deployment("dep-1", "one")
    repo = make_astro_project(tmp_path / "repo", "FROM python:3.12-slim\n")
    with pytest.raises(DeployRefused) as err:
        cp.deploy("dep-1", "ws-1", repo, "r")
    assert err.value.reason == "not-runtime" and err.value.image == "python:3.12-slim"


# ------------------------------------------------------------------------ secrets


def test_token_never_appears_in_errors_or_logs(cp, sim, tmp_path, caplog) -> None:
    token = sim.env["ASTRO_API_TOKEN"]
    caplog.set_level(logging.DEBUG)
    sim.add_deployment("dep-1", "one", runtime_version="12.5.0")
    seen: list[str] = []

    def expect_failure(action) -> None:
        with pytest.raises(UpgradeError) as err:
            action()
        exc = err.value
        seen.extend([str(exc), repr(exc.args)])
        seen.extend(str(getattr(exc, name, "")) for name in ("output", "astro_message", "url"))

    repo = project(tmp_path, "12.4.0")
    expect_failure(lambda: cp.deploy("dep-1", "ws-1", repo, "r"))  # downgrade
    sim.set_fault("dep-1", deploy_error=f"registry said: bad credentials {token}")
    expect_failure(lambda: cp.deploy("dep-1", "ws-1", project(tmp_path, "12.6.0"), "r"))
    expect_failure(lambda: cp.deploy("dep-x", "ws-1", repo, "r"))
    expect_failure(lambda: cp.inspect("dep-x", "ws-1"))
    info = cp.inspect("dep-1", "ws-1")
    sim.set_fault("dep-1", airflow_5xx=10)
    expect_failure(lambda: cp.airflow_health(info))
    sim.set_fault("dep-1", airflow_5xx=None)
    outcome = cp.deploy("dep-1", "ws-1", project(tmp_path, "12.7.0"), "r")
    seen.append(outcome.output)
    seen.append(caplog.text)
    everything = "\n".join(seen)
    assert "bad credentials" in everything  # the message got through, the token did not
    assert token not in everything
    assert token.split(".")[1][:16] not in everything
