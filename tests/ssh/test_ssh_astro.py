"""``astro deploy`` on a repo's SSH runner: astro-sim through sshd, against the simulator."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from simulators import make_astro_project
from support import wait_healthy

from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import AstroError, AstroTimeout, DeployFailed
from upgrade.hosts.ssh import SSHHost

pytestmark = pytest.mark.sshd


def _wrapper(tmp_path: Path, body: str) -> Path:
    """An ``astro`` that logs "subcommand|cwd|$SSH_CONNECTION" to ran.log, then does ``body``."""
    script = tmp_path / "bin" / "astro"
    script.parent.mkdir(exist_ok=True)
    script.write_text('#!/bin/sh\nprintf "%s|%s|%s\\n" "$1" "$PWD" "$SSH_CONNECTION" '
                      f'>> "{tmp_path}/ran.log"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _plane(sim, astro_bin: str) -> ControlPlane:  # type: ignore[no-untyped-def]
    return ControlPlane(sim.control_plane(
        astro_bin=astro_bin, deploy_timeout=60,
        inspect_timeout=15, wait_timeout=10, poll_interval=0.02,
        status_via="cli",  # status reads are `astro deployment inspect`, on this machine
    ))


def test_astro_deploy_runs_on_the_runner_in_the_repo_dir(sim, ssh_host: SSHHost, sshd, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sim.add_deployment("dep-1", "analytics-prod", runtime_version="12.4.0")
    repo = make_astro_project(tmp_path / "repo with space",
                              "FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    astro = _wrapper(tmp_path, f'exec {sim.astro_bin} "$@"')
    with _plane(sim, str(astro)) as plane:
        outcome = plane.deploy("dep-1", "ws-1", repo, "fleet rollout r-1 to 12.5.0", host=ssh_host)
        info = wait_healthy(plane, "dep-1", "ws-1", image_tag=outcome.image_tag)
    assert (info.status, info.runtime_version) == ("HEALTHY", "12.5.0")
    assert [d["description"] for d in sim.deployment("dep-1")["deploys"]] == [
        "fleet rollout r-1 to 12.5.0"]
    # The deploy ran in the repo dir through sshd (a runner session); inspect stays here.
    runs = [line.split("|") for line in (tmp_path / "ran.log").read_text().splitlines()]
    deploy, *inspects = runs
    assert deploy[:2] == ["deploy", str(repo)] and deploy[2].endswith(f" {sshd.port}")
    assert inspects and all(run[0] == "deployment" and run[2] == "" for run in inspects)
    assert ssh_host.connections_opened == 1
    token = sim.env["ASTRO_API_TOKEN"]
    assert token not in caplog.text
    assert "astro" in caplog.text and "runner build-1" in caplog.text


def test_a_failing_deploy_on_the_runner_never_shows_the_token(sim, ssh_host: SSHHost, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sim.add_deployment("dep-1", "one")
    repo = make_astro_project(tmp_path / "repo", "FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    astro = _wrapper(tmp_path, 'echo "Error: registry said no to $ASTRO_API_TOKEN" >&2; exit 1')
    with _plane(sim, str(astro)) as plane, pytest.raises(DeployFailed) as caught:
        plane.deploy("dep-1", "ws-1", repo, "r-1", host=ssh_host)
    token = sim.env["ASTRO_API_TOKEN"]
    text = str(caught.value) + caught.value.output + caught.value.astro_message
    assert "registry said no to ***" in text
    assert token not in text and token not in caplog.text


def test_astro_missing_on_the_runner_is_named(sim, ssh_host: SSHHost, tmp_path: Path) -> None:
    repo = make_astro_project(tmp_path / "repo", "FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    with _plane(sim, "/opt/nowhere/astro") as plane, pytest.raises(
            AstroError, match="cannot run the astro CLI '/opt/nowhere/astro' on runner build-1"):
        plane.deploy("dep-1", "ws-1", repo, "r-1", host=ssh_host)


def test_a_repo_missing_on_the_runner_is_refused_before_running(sim, ssh_host: SSHHost, tmp_path: Path) -> None:
    with _plane(sim, sim.astro_bin) as plane, pytest.raises(
            Exception, match="does not exist on runner build-1"):
        plane.deploy("dep-1", "ws-1", tmp_path / "gone", "r-1", host=ssh_host)


def test_a_hanging_deploy_on_the_runner_times_out(sim, ssh_host: SSHHost, tmp_path: Path) -> None:
    repo = make_astro_project(tmp_path / "repo", "FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    astro = _wrapper(tmp_path, "echo building; sleep 30")
    cli = _plane(sim, str(astro)).astro
    cli.deploy_timeout = 0.5
    with pytest.raises(AstroTimeout, match="within 0.5s on runner build-1 and was killed") as caught:
        cli.deploy("dep-1", "ws-1", repo, "r-1", host=ssh_host)
    assert "building" in caught.value.output
