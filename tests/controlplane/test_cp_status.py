"""ControlPlane.status against the simulator: through the platform API and through
``astro deployment inspect``, the same DeploymentInfo and the same typed failures."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest
from simulators import SimHandle, make_astro_project
from support import wait_healthy

from upgrade.config.checker import Checker
from upgrade.config.control_plane import ControlPlaneConfig, read_control_plane
from upgrade.config.located import loads
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.errors import AstroAuthError, AstroError, DeploymentNotFound, InputError

FIELDS = [f.name for f in dataclasses.fields(DeploymentInfo) if f.name != "raw"]


def plane(sim: SimHandle, via: str, **overrides: object) -> ControlPlane:
    return ControlPlane(sim.control_plane(status_via=via, http_retries=0, http_timeout=2.0, inspect_timeout=20,
        **overrides))


def fields(info: DeploymentInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in FIELDS}


@pytest.mark.parametrize("runtime, image", [
    ("12.5.0", "quay.io/astronomer/astro-runtime"),
    ("3.1-12", "astrocrpublic.azurecr.io/runtime"),
])
def test_api_and_cli_report_the_same_deployment(sim: SimHandle, tmp_path: Path, runtime: str,
                                                image: str) -> None:
    start = "12.4.0" if runtime.startswith("12") else "3.0-7"
    sim.add_deployment("dep-1", "analytics-prod", runtime_version=start,
                       description="nightly loads")
    repo = make_astro_project(tmp_path / "repo", f"FROM {image}:{runtime}\n")
    with plane(sim, "api") as api, plane(sim, "cli") as cli:
        outcome = cli.deploy("dep-1", "ws-1", repo, "status test")
        settled = wait_healthy(api, "dep-1", "ws-1", image_tag=outcome.image_tag)
        via_api, via_cli = api.status("dep-1", "ws-1"), cli.status("dep-1", "ws-1")
    assert api.platform is not None and cli.platform is None
    assert fields(via_api) == fields(via_cli)
    assert fields(settled) == fields(via_api)
    assert (via_api.runtime_version, via_api.status, via_api.image_tag) == (
        runtime, "HEALTHY", outcome.image_tag)
    assert via_api.airflow_api_url.endswith("/api/v2" if "-" in runtime else "/api/v1")
    assert via_api.created_at is not None and via_api.description == "nightly loads"


def test_the_api_path_spawns_no_astro_process(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one", runtime_version="12.4.0")
    gone = "/nonexistent/bin/astro-sim"  # any attempt to run the CLI would fail
    with plane(sim, "auto", astro_bin=gone) as api:
        assert api.status("dep-1", "ws-1").runtime_version == "12.4.0"
    with plane(sim, "cli", astro_bin=gone) as cli, pytest.raises(
            AstroError, match="cannot run the astro CLI"):
        cli.status("dep-1", "ws-1")


@pytest.mark.parametrize("via", ["api", "cli"])
def test_unknown_missing_and_misplaced_deployments_are_not_found(sim: SimHandle,
                                                                 via: str) -> None:
    sim.add_deployment("dep-1", "one")
    sim.add_deployment("dep-2", "two")
    sim.set_fault("dep-2", missing=True)
    with plane(sim, via) as cp:
        for dep, ws in (("dep-nope", "ws-1"), ("dep-2", "ws-1"), ("dep-1", "ws-other")):
            with pytest.raises(DeploymentNotFound) as info:
                cp.status(dep, ws)
            assert info.value.deployment_id == dep
            assert info.value.astro_message


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_refused_token_is_an_auth_error_that_never_shows_the_token(sim: SimHandle,
                                                                     via: str) -> None:
    sim.add_deployment("dep-1", "one")
    secret = "not-a-jwt-but-a-secret-value"
    config = sim.control_plane(status_via=via, http_retries=0)
    config = replace(config, extra_env={**config.extra_env, "ASTRO_API_TOKEN": secret})
    with ControlPlane(config) as cp, pytest.raises(AstroAuthError) as info:
        cp.status("dep-1", "ws-1")
    assert secret not in str(info.value) + info.value.astro_message + info.value.output


def test_status_via_is_validated_and_api_needs_a_token(monkeypatch) -> None:
    checker = Checker("inventory.yaml")
    read_control_plane(checker, loads("control_plane:\n  status_via: psychic\n",
                                      file="inventory.yaml"))
    assert str(checker.problems[0]) == ("inventory.yaml:2: control_plane.status_via: must be one "
                                        "of auto, api, cli, got 'psychic'.")
    assert ControlPlaneConfig().status_via == "auto"

    monkeypatch.delenv("ASTRO_API_TOKEN", raising=False)
    with pytest.raises(InputError, match=r"status_via is 'api', but \$ASTRO_API_TOKEN is not "
                                         "set"):
        ControlPlane(ControlPlaneConfig(status_via="api"))
    with ControlPlane(ControlPlaneConfig()) as cp:  # auto without a token: the CLI
        assert cp.platform is None
