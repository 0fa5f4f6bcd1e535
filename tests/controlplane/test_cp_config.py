"""ControlPlaneConfig validation and the ControlPlane facade's wiring."""

from __future__ import annotations

from textwrap import dedent

import pytest

from upgrade.config.checker import Checker
from upgrade.config.control_plane import ControlPlaneConfig, read_control_plane
from upgrade.config.located import loads
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.controlplane.http import retry_policy
from upgrade.errors import EXIT_INPUT, InputError, InventoryError


def read(text: str) -> ControlPlaneConfig:
    """The control_plane section of an inventory text, through the inventory's checker."""
    checker = Checker("inventory.yaml")
    config = read_control_plane(checker, loads(text, file="inventory.yaml"))
    checker.raise_if_any(InventoryError)
    return config


def test_defaults_are_production() -> None:
    cfg = ControlPlaneConfig()
    assert cfg.astro_bin == "astro"
    assert cfg.airflow_scheme == "https"
    assert cfg.token_env == "ASTRO_API_TOKEN"
    assert retry_policy(cfg).attempts == cfg.http_retries + 1
    assert cfg.status_via == "auto"
    assert read("target: '12'") == ControlPlaneConfig()


def test_every_key_is_read_and_typed() -> None:
    cfg = read(dedent("""\
        control_plane:
          api_url: https://api.example.invalid/v1/
          astro_bin: /opt/astro/bin/astro
          extra_env: {ASTRO_DOMAIN: astronomer.io}
          deploy_timeout: 3600
          inspect_timeout: 30.5
          kill_grace: 2
          airflow_scheme: http
          token_env: FLEET_ASTRO_TOKEN
          http_timeout: 5
          http_connect_timeout: 2
          http_retries: 0
          http_backoff: 0.25
          http_backoff_max: 4
          http_total_timeout: 20
          wait_timeout: 600
          poll_interval: 5
          status_via: cli
        """))
    assert cfg.astro_bin == "/opt/astro/bin/astro"
    assert cfg.deploy_timeout == 3600.0 and isinstance(cfg.deploy_timeout, float)
    assert cfg.http_retries == 0 and retry_policy(cfg).attempts == 1
    assert cfg.status_via == "cli"
    assert dict(cfg.extra_env) == {"ASTRO_DOMAIN": "astronomer.io"}
    assert cfg.api_url == "https://api.example.invalid/v1"


def test_api_url_is_https_or_this_machine_and_the_retired_simulator_key_says_what_to_write():
    assert read("control_plane:\n  api_url: http://127.0.0.1:8/v1\n").api_url == \
        "http://127.0.0.1:8/v1"
    with pytest.raises(InventoryError) as info:
        read("control_plane:\n  api_url: http://api.example.invalid/v1\n  simulator: .sim\n"
             "  astro_bin: astro\n")
    text = str(info.value)
    assert ("inventory.yaml:2: control_plane.api_url: http:// only to this machine (the token "
            "travels with every request); use https://api.example.invalid/v1.") in text
    assert ("inventory.yaml:3: control_plane.simulator: the simulator is configured like Astro "
            "itself now: api_url, astro_bin, airflow_scheme and extra_env") in text
    assert len(info.value.problems) == 2


def test_every_problem_is_reported_with_file_line_and_key() -> None:
    with pytest.raises(InventoryError) as info:
        read(dedent("""\
            control_plane:
              astro_binary: astro
              deploy_timeout: -1
              inspect_timeout: true
              airflow_scheme: ftp
              http_retries: 1.5
              extra_env: {N: 3}
              token_env: ""
            """))
    err = info.value
    assert isinstance(err, InputError) and err.exit_code == EXIT_INPUT
    text = str(err)
    assert "inventory.yaml:2: control_plane.astro_binary: unknown key. Did you mean 'astro_bin'?" in text
    assert "inventory.yaml:3: control_plane.deploy_timeout: must be a positive number" in text
    assert "inventory.yaml:5: control_plane.airflow_scheme: must be one of https, http" in text
    for key in ("inspect_timeout", "http_retries", "extra_env.N", "token_env"):
        assert f"control_plane.{key}" in text
    assert len(err.problems) == 7


def test_a_section_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InventoryError, match=r"inventory.yaml:1: control_plane: must be a mapping"):
        read("control_plane: [astro]")


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
