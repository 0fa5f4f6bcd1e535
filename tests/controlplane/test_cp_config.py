"""ControlPlaneConfig validation and the ControlPlane facade's wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from upgrade.controlplane.astro import DeploymentInfo
from upgrade.controlplane.control_plane import ControlPlane, ControlPlaneConfig
from upgrade.errors import EXIT_INPUT, DeploymentNotHealthy, InputError, ProblemsError


def test_defaults_are_production() -> None:
    cfg = ControlPlaneConfig()
    assert cfg.astro_bin == "astro"
    assert cfg.airflow_scheme == "https"
    assert cfg.token_env == "ASTRO_API_TOKEN"
    assert cfg.retry_policy().attempts == cfg.http_retries + 1
    assert cfg.status_via == "auto"


def test_from_mapping_accepts_every_key() -> None:
    cfg = ControlPlaneConfig.from_mapping(
        {
            "astro_bin": "/opt/astro/bin/astro",
            "extra_env": {"ASTRO_DOMAIN": "astronomer.io"},
            "deploy_timeout": 3600,
            "inspect_timeout": 30.5,
            "kill_grace": 2,
            "airflow_scheme": "http",
            "token_env": "FLEET_ASTRO_TOKEN",
            "http_timeout": 5,
            "http_connect_timeout": 2,
            "http_retries": 0,
            "http_backoff": 0.25,
            "http_backoff_max": 4,
            "http_total_timeout": 20,
            "wait_timeout": 600,
            "poll_interval": 5,
            "status_via": "cli",
        }
    )
    assert cfg.astro_bin == "/opt/astro/bin/astro"
    assert cfg.deploy_timeout == 3600.0 and isinstance(cfg.deploy_timeout, float)
    assert cfg.http_retries == 0 and cfg.retry_policy().attempts == 1
    assert cfg.status_via == "cli"
    assert dict(cfg.extra_env) == {"ASTRO_DOMAIN": "astronomer.io"}
    assert ControlPlaneConfig.from_mapping(None) == ControlPlaneConfig()


def test_from_mapping_reports_every_problem_with_file_line_and_key() -> None:
    with pytest.raises(ProblemsError) as info:
        ControlPlaneConfig.from_mapping(
            {
                "astro_binary": "astro",
                "deploy_timeout": -1,
                "inspect_timeout": True,
                "airflow_scheme": "ftp",
                "http_retries": 1.5,
                "extra_env": {"N": 3},
                "token_env": "",
            },
            source="inventory.yaml",
            lines={"astro_binary": 12, "deploy_timeout": 13},
        )
    err = info.value
    assert isinstance(err, InputError) and err.exit_code == EXIT_INPUT
    text = str(err)
    assert "inventory.yaml:12: control_plane.astro_binary: unknown key" in text
    assert "valid keys:" in text and "astro_bin" in text
    assert "inventory.yaml:13: control_plane.deploy_timeout: must be a positive number" in text
    for key in ("inspect_timeout", "airflow_scheme", "http_retries", "extra_env", "token_env"):
        assert f"control_plane.{key}" in text
    assert len(err.problems) == 7


def test_from_mapping_refuses_a_non_mapping() -> None:
    with pytest.raises(InputError, match="control_plane: must be a mapping"):
        ControlPlaneConfig.from_mapping(["astro"])  # type: ignore[arg-type]


def _info(api_url: str) -> DeploymentInfo:
    return DeploymentInfo(
        id="dep-1", name="n", workspace_id="ws-1", runtime_version="12.4.0",
        airflow_version="2.10.5", status="HEALTHY", image_tag="t",
        airflow_api_url=api_url, webserver_url="",
    )


def test_control_plane_uses_configured_scheme_and_token_env(http_server) -> None:
    http_server.script(
        "/d/dep-1/api/v1/version", ("json", 200, {"version": "2.10.5+astro.3", "git_version": None})
    )
    cfg = ControlPlaneConfig(
        airflow_scheme="http", token_env="FLEET_TOKEN", extra_env={"FLEET_TOKEN": "tok-123456"}
    )
    with ControlPlane(cfg) as cp:
        version = cp.airflow_version(_info(http_server.api_url("dep-1", 1)))
    assert version.local == "astro.3"
    assert http_server.seen[0].headers["Authorization"] == "Bearer tok-123456"


def _status_script(fake_astro, tmp_path: Path, statuses: list[tuple[str, str]]) -> Path:
    """A stand-in astro whose successive inspects report ``statuses`` (status, image tag)."""
    counter = tmp_path / "calls"
    return fake_astro(
        f"""
        import json, pathlib, sys
        counter = pathlib.Path({str(counter)!r})
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        statuses = {json.dumps(statuses)}
        status, tag = statuses[min(n, len(statuses) - 1)]
        print(json.dumps({{"deployment": {{
            "configuration": {{"name": "n", "runtime_version": "12.5.0"}},
            "metadata": {{"deployment_id": "dep-1", "workspace_id": "ws-1",
                          "status": status, "current_tag": tag}}}}}}, indent=4))
        """
    )


def test_wait_healthy_waits_for_the_new_image(fake_astro, tmp_path: Path) -> None:
    # Right after finalize Astro may still say HEALTHY for the old image (§3.7).
    binary = _status_script(
        fake_astro, tmp_path,
        [("HEALTHY", "old"), ("DEPLOYING", "new"), ("UNHEALTHY", "new"), ("HEALTHY", "new")],
    )
    # status_via cli: these polls are the CLI's, whatever token the environment holds.
    with ControlPlane(ControlPlaneConfig(astro_bin=str(binary), status_via="cli")) as cp:
        info = cp.wait_healthy("dep-1", "ws-1", image_tag="new", timeout=20, poll_interval=0.01)
    assert (info.status, info.image_tag) == ("HEALTHY", "new")
    assert (tmp_path / "calls").read_text() == "4"


def test_wait_healthy_gives_up_with_the_last_state(fake_astro, tmp_path: Path) -> None:
    binary = _status_script(fake_astro, tmp_path, [("DEPLOYING", "new")])
    config = ControlPlaneConfig(astro_bin=str(binary), status_via="cli")
    with ControlPlane(config) as cp, pytest.raises(DeploymentNotHealthy) as info:
        cp.wait_healthy("dep-1", "ws-1", timeout=0.5, poll_interval=0.1)
    assert info.value.last is not None and info.value.last.status == "DEPLOYING"
    assert "last seen DEPLOYING" in str(info.value)
