"""Where astro-cli, Astro's platform API and Airflow differ from a first guess
(../shared/reference/forges-and-astro-edges.md; astro-cli at ed93cc59, v1.46 nightly),
through the production clients against the Astro simulator, which behaves as the sources
say (astro-sim wraps errors as astro-cli does; the platform API promises no deploy order
and takes array parameters only repeated)."""

from __future__ import annotations

import httpx
import pytest
from simulators import SimHandle

from upgrade.controlplane.astro import AstroCLI
from upgrade.controlplane.astro_output import (
    CliVersion,
    classify_inspect,
    tail,
)
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deploy_record import latest_with_git
from upgrade.controlplane.platform import PlatformReader
from upgrade.errors import AstroError, DeploymentNotFound
from upgrade.hosts.host import CommandResult

NOT_FOUND = ("the Deployment specified was not found in this workspace. Your account or API "
             "Key may not have access to the deployment specified")
# astro-cli version/version.go, CompareVersions (on stderr).
NAG = ("\nA newer version of Astro CLI is available: 1.46.0\nPlease see "
       "https://www.astronomer.io/docs/astro/cli/upgrade-cli for information on how to update "
       "the Astro CLI\n\n\nTo learn more about what's new in this version, please see "
       "https://www.astronomer.io/docs/astro/cli/release-notes\n\nIf you don't want to see "
       "this message again run 'astro config set -g upgrade_message false' or pass "
       "'2>/dev/null' to print this text to stderr\n\n")


def _result(stdout: str = "", stderr: str = "", code: int = 1) -> CommandResult:
    return CommandResult(("astro", "deployment", "inspect", "dep-1"), ".", code, stdout, stderr, 0.1)


def _cli(sim: SimHandle, **env: str) -> AstroCLI:
    return AstroCLI(sim.astro_bin, extra_env={**sim.env, **env})


# ------------------------------------------- 5: "not found" is not proof of absence

def test_not_found_wrapping_an_astro_outage_is_unavailable_not_absent(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    cli = _cli(sim)
    with pytest.raises(DeploymentNotFound):  # the list was read: really not there
        cli.inspect("dep-9", "ws-1")
    sim.stop()  # Astro's API is down: the CLI's list fails, and GetDeployment wraps it
    said = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-1")
    assert said.returncode == 1
    assert said.stderr.startswith(f'Error: {NOT_FOUND}: Get "{sim.url}/v1/organizations/')
    with pytest.raises(AstroError) as caught:
        cli.inspect("dep-1", "ws-1")
    assert not isinstance(caught.value, DeploymentNotFound)
    assert caught.value.exit_code == 7
    assert "could not list the workspace's Deployments" in str(caught.value)
    assert "try again" in str(caught.value)


def test_a_wrapped_5xx_is_unavailable_and_a_bare_sentence_is_absence() -> None:
    wrapped = _result(stderr=f"Error: {NOT_FOUND}: failed to perform request, status 503\n")
    with pytest.raises(AstroError) as caught:
        classify_inspect(wrapped, "dep-1")
    assert type(caught.value) is AstroError
    assert caught.value.astro_message == "failed to perform request, status 503"
    with pytest.raises(DeploymentNotFound):
        classify_inspect(_result(stderr=f"Error: {NOT_FOUND}\n"), "dep-1")


# ------------------------------------------------------------ 9: the update nag

def test_the_current_update_nag_is_never_taken_for_astros_words() -> None:
    text = NAG + "Error: something broke\n"
    assert tail(text) == "Error: something broke"
    with pytest.raises(AstroError) as caught:
        classify_inspect(_result(stderr=NAG, code=1), "dep-1")
    message = str(caught.value) + caught.value.output
    assert "Please see" not in message and "don't want to see" not in message
    assert "release-notes" not in message


# ----------------------------------------- 11: `deployment list --all` needs a workspace

def test_list_all_gives_the_cli_the_workspace_it_resolves_first(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one", workspace_id="ws-1")
    sim.add_deployment("dep-2", "two", workspace_id="ws-2")
    cp = ControlPlane(sim.control_plane(status_via="cli"))  # an Organization token
    assert {s.id for s in cp.list_all("ws-1")} == {"dep-1", "dep-2"}


# ------------------------------------------------------------- 6: the CLI's release

@pytest.mark.parametrize("release", ["1.42.0", "1.43.0", "1.46.0-nightly.20260822"])
def test_the_cli_release_is_read_from_astro_version(sim: SimHandle, release: str) -> None:
    found = _cli(sim, ASTRO_SIM_VERSION=release).version()
    assert found == CliVersion.parse(release) and str(found) == release.split("-")[0]
    assert (found >= CliVersion(1, 43, 0)) == (release != "1.42.0")


# -------------------------------------- 7: deploys paged, ordered by us, not by Astro

def test_every_deploy_is_read_and_ordered_by_creation(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    sim.freeze_clock()
    base = sim.url + "/v1/organizations/org-sim/deployments/dep-1/deploys"
    headers = {"Authorization": f"Bearer {sim.env['ASTRO_API_TOKEN']}"}
    for n in range(1, 26):
        git = {"provider": "GENERIC", "commitSha": f"{n:040x}",
               "remoteUrl": "https://gitlab.example.invalid/acme/dags.git", "branch": "main"}
        httpx.post(base, json={"type": "IMAGE_AND_DAG", "description": f"#{n}", "git": git},
                   headers=headers).raise_for_status()
        sim.advance(100)
    served = httpx.get(base, params={"limit": 20}, headers=headers).json()["deploys"]
    assert served[0]["description"] == "#1"  # the simulator promises no newest-first
    with PlatformReader.for_config(sim.control_plane()) as reader:
        records = reader.deploys("dep-1")
    assert [r.description for r in records] == [f"#{n}" for n in range(25, 0, -1)]
    latest = latest_with_git(records)
    assert latest is not None and latest.git is not None
    assert latest.git.commit_sha == f"{25:040x}"


# ---------------------------------------------- 8: workspaceIds repeated, not joined

def test_deployments_of_several_workspaces_repeat_the_parameter(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one", workspace_id="ws-1")
    sim.add_deployment("dep-2", "two", workspace_id="ws-2")
    sim.add_deployment("dep-3", "three", workspace_id="ws-3")
    with PlatformReader.for_config(sim.control_plane()) as reader:
        assert set(reader.deployments(("ws-1", "ws-2"))) == {"dep-1", "dep-2"}
    joined = httpx.get(sim.url + "/v1/organizations/org-sim/deployments",
                       params={"workspaceIds": "ws-1,ws-2"},
                       headers={"Authorization": f"Bearer {sim.env['ASTRO_API_TOKEN']}"})
    assert joined.json()["deployments"] == []  # one id no workspace has


# ------------------------------------------ 10: the Airflow API version is asked

@pytest.mark.parametrize(("runtime", "suffix", "version"), [
    ("12.4.0", "", 1),          # no suffix at all
    ("3.0-7", "/api/v1", 2),    # a suffix that is wrong for what runs
    ("12.4.0", "/api/v2", 1),
])
def test_the_airflow_api_version_is_probed_not_read_from_the_url(
        sim: SimHandle, runtime: str, suffix: str, version: int) -> None:
    url = f"{sim.url.removeprefix('http://')}/d/dep-1{suffix}"
    sim.add_deployment("dep-1", "one", runtime_version=runtime, airflow_api_url=url)
    with ControlPlane(sim.control_plane()) as cp:
        info = cp.status("dep-1", "ws-1")
        assert info.airflow_api_url == url
        endpoint = cp.airflow_endpoint(info)
        assert endpoint.api_version == version
        assert cp.airflow_health(info).healthy
        assert cp.airflow_version(info).version == info.airflow_version
