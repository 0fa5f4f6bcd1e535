"""``astro-sim deploy`` against a real simulator: versions, refusals, exit-0 traps."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from simulators import SimHandle

from tests.simulator.helpers import AF2, AF3, airflow_get, deploy, project, wait_status

DOWNGRADE = (
    "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to "
    "{current} or higher in your Dockerfile\nCanceling deploy...\n"
)
UNCOMMITTED = (
    "Project directory has uncommitted changes, use `astro deploy [deployment-id] -f` "
    "to force deploy.\n"
)


def _head(proj: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=proj, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_deploy_upgrades_and_prints_the_astro_success_sequence(
    sim: SimHandle, tmp_path: Path
) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="12.4.0")
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:acme/dags.git"], cwd=proj,
                   check=True)
    result = deploy(sim, proj, "dep-1", "--description", "Runtime 12.5.0")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "Using an Astro API Token"
    assert lines[1] == "Authenticated to Astro "
    order = ["Building image...", "Testing image...", "Pushing image to Astronomer registry"]
    assert [line for line in lines if line in order] == order
    tag = re.search(
        r"^Deployed Image Tag:  (deploy-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)$", result.stdout, re.M
    )
    assert tag is not None
    assert "Successfully pushed image to Astronomer registry." in result.stdout
    assert " Deployment View: https://cloud.astronomer.io/ws-1/deployments/dep-1\n" in result.stdout
    assert result.stdout.endswith(f" Airflow UI: https://{sim.url[7:]}/d/dep-1?orgId=org-sim\n\n")

    state = sim.deployment("dep-1")
    assert state["runtime_version"] == "12.5.0"
    assert state["image_tag"] == tag.group(1)
    assert state["deploy_count"] == 1
    record = state["deploys"][0]
    assert (record["runtime_version"], record["description"]) == ("12.5.0", "Runtime 12.5.0")
    assert record["git"]["commitSha"] == _head(proj)
    assert wait_status(sim, "dep-1", "HEALTHY")["status"] == "HEALTHY"


def test_status_goes_deploying_then_healthy(sim: SimHandle, tmp_path: Path) -> None:
    sim.configure(healthy_after_seconds=1500)  # 1.5 s at the fixture's time scale
    sim.add_deployment("dep-1", "prod")
    assert deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1").returncode == 0
    assert sim.deployment("dep-1")["status"] == "DEPLOYING"
    assert wait_status(sim, "dep-1", "HEALTHY")["status"] == "HEALTHY"


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("ARG V=12.5.0\nFROM quay.io/astronomer/astro-runtime:${V}-base\n", "12.5.0"),
        (
            "ARG IMAGE=quay.io/astronomer/astro-runtime:12.6.0-python-3.12\nFROM ${IMAGE}\n",
            "12.6.0",
        ),
        (
            "FROM --platform=linux/amd64 quay.io/astronomer/astro-runtime:12.7.1-slim-base AS build\n"
            "RUN echo hi\nFROM build\n",
            "12.7.1",
        ),
        ("FROM astrocrpublic.azurecr.io/astronomer/astro-runtime:13.4.0-base\n", "13.4.0"),
    ],
)
def test_deployed_version_follows_the_dockerfile(
    sim: SimHandle, tmp_path: Path, dockerfile: str, expected: str
) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="12.4.0")
    result = deploy(sim, project(tmp_path, dockerfile), "dep-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.deployment("dep-1")["deploys"][0]["runtime_version"] == expected


def test_downgrade_is_refused_with_astros_message(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="12.4.0")
    result = deploy(sim, project(tmp_path, AF2.format(v="12.3.0")), "dep-1")
    assert result.returncode == 1
    assert result.stderr == ""
    assert result.stdout.endswith(DOWNGRADE.format(current="12.4.0"))
    state = sim.deployment("dep-1")
    assert (state["runtime_version"], state["deploy_count"]) == ("12.4.0", 0)
    # As on Astro, the deploy record was created before the build and never finalized.
    assert [a["status"] for a in state["deploy_attempts"]] == ["INITIALIZED"]


def test_airflow3_to_airflow2_is_a_downgrade(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="3.0-1")
    result = deploy(sim, project(tmp_path, AF2.format(v="13.9.0")), "dep-1")
    assert result.returncode == 1
    assert result.stdout.endswith(DOWNGRADE.format(current="3.0-1"))


def test_unsupported_version_is_refused(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="8.0.0")
    for version in ("12.4.7", "9.0.0"):  # not in the catalog; yanked
        result = deploy(sim, project(tmp_path, AF2.format(v=version), name=version), "dep-1")
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert lines[-3] == (
            "Cannot deploy an unsupported Astro Runtime version. Modify your Astro Runtime "
            "version to a supported version in your Dockerfile"
        )
        supported = lines[-2].removeprefix("Supported versions: ").split(", ")
        assert "12.4.0" in supported and "3.1-12" in supported and "9.0.0" not in supported
        assert lines[-1] == "Canceling deploy..."
    assert sim.deployment("dep-1")["deploy_count"] == 0


def test_airflow2_to_3_needs_runtime_12(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("old", "old", runtime_version="11.8.0")
    sim.add_deployment("new", "new", runtime_version="12.4.0")
    proj = project(tmp_path, AF3.format(v="3.1-12-python-3.12"))
    refused = deploy(sim, proj, "old")
    assert refused.returncode == 1
    assert refused.stdout.endswith(
        "Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro Runtime "
        "12.0.0 or higher\nCanceling deploy...\n"
    )
    allowed = deploy(sim, proj, "new")
    assert allowed.returncode == 0, allowed.stdout
    assert wait_status(sim, "new", "HEALTHY")["runtime_version"] == "3.1-12"
    status, body = airflow_get(sim, "new", "v2", "/version")
    assert (status, body["version"]) == (200, "3.1.7+astro.1")


def test_floating_airflow3_tag_deploys_its_newest_build(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="3.1-1")
    assert deploy(sim, project(tmp_path, AF3.format(v="3.1")), "dep-1").returncode == 0
    assert sim.deployment("dep-1")["runtime_version"] == "3.1-17"


def test_equal_version_redeploy_is_allowed(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="12.4.0")
    proj = project(tmp_path, AF2.format(v="12.4.0"))
    assert deploy(sim, proj, "dep-1").returncode == 0
    assert deploy(sim, proj, "dep-1").returncode == 0
    state = sim.deployment("dep-1")
    assert state["deploy_count"] == 2
    assert len({d["image_tag"] for d in state["deploys"]}) == 2


@pytest.mark.parametrize(
    "dockerfile",
    ["FROM python:3.11\n", "FROM quay.io/astronomer/ap-airflow:2.3.4-7-onbuild\n"],
)
def test_non_runtime_base_is_refused(sim: SimHandle, tmp_path: Path, dockerfile: str) -> None:
    sim.add_deployment("dep-1", "prod")
    result = deploy(sim, project(tmp_path, dockerfile), "dep-1")
    image = dockerfile.split()[1]
    assert result.returncode == 1
    assert result.stdout.endswith(
        f"WARNING! The image in your Dockerfile '{image}' is not based on Astro Runtime and is not "
        "supported. Change your Dockerfile with an image that pulls from "
        "'quay.io/astronomer/astro-runtime' to proceed.\nCanceling deploy...\n"
    )


def test_uncommitted_changes_exit_zero_without_deploying(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    (proj / "Dockerfile").write_text(AF2.format(v="12.6.0"))
    result = deploy(sim, proj, "dep-1")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Using an Astro API Token\n" + UNCOMMITTED
    state = sim.deployment("dep-1")
    assert (state["runtime_version"], state["deploy_attempts"]) == ("12.4.0", [])
    forced = deploy(sim, proj, "dep-1", "-f")
    assert forced.returncode == 0
    assert sim.deployment("dep-1")["runtime_version"] == "12.6.0"


def test_workspace_mismatch_exits_zero_without_deploying(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod", workspace_id="ws-1")
    result = deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1", workspace="ws-2")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "Using an Astro API Token\nAuthenticated to Astro \n\n"
        "Invalid workspace id ws-2 was provided through the --workspace-id flag\n"
    )
    assert sim.deployment("dep-1")["deploy_attempts"] == []


def test_declined_no_dags_prompt_exits_zero(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    subprocess.run(["git", "rm", "-q", "dags/example_dag.py"], cwd=proj, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "no dags"],
        cwd=proj,
        check=True,
    )
    declined = deploy(sim, proj, "dep-1")
    assert declined.returncode == 0
    assert declined.stdout.endswith(
        "Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to "
        "deploy? (y/n) Canceling deploy...\n"
    )
    assert sim.deployment("dep-1")["deploy_count"] == 0
    accepted = deploy(sim, proj, "dep-1", stdin="y\n")
    assert accepted.returncode == 0
    assert "No DAGs found. Skipping testing..." in accepted.stdout
    assert sim.deployment("dep-1")["deploy_count"] == 1
    forced = deploy(sim, proj, "dep-1", "-f")
    assert forced.returncode == 0 and "(y/n)" not in forced.stdout
    assert sim.deployment("dep-1")["deploy_count"] == 2


def test_not_a_project_directory(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    result = deploy(sim, tmp_path, "dep-1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: this is not an Astro project directory.\n")


def test_unknown_deployment_is_an_api_error(sim: SimHandle, tmp_path: Path) -> None:
    result = deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "nope")
    assert result.returncode == 1
    assert result.stderr == "Error: Deployment not found\n"


def test_wait_reports_healthy(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    result = deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1", "--wait")
    assert result.returncode == 0, result.stderr
    assert (
        "\nWaiting for the deployment to become healthy…\n\nThis may take a few minutes\n"
        in result.stdout
    )
    assert "Deployment prod is now healthy\n" in result.stdout


def test_wait_time_needs_wait(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    result = deploy(sim, project(tmp_path, AF2.format(v="12.5.0")), "dep-1", "--wait-time", "1m")
    assert result.returncode == 1
    assert result.stderr == "Error: cannot use --wait-time with --wait=false\n"


def test_missing_id_never_prompts(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    sim.add_deployment("dep-2", "stage")
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    result = sim.run("deploy", "--workspace-id", "ws-1", cwd=proj)
    assert result.returncode == 1
    assert "Select a Deployment\n" in result.stdout
    assert re.search(r"^ #\s+DEPLOYMENT NAME\s+RELEASE NAME\s+DEPLOYMENT ID", result.stdout, re.M)
    assert result.stdout.endswith("\n> ")
    assert result.stderr == "Error: invalid Deployment selected\n"
    assert sim.deployment("dep-1")["deploy_attempts"] == []


def test_missing_id_with_one_deployment_auto_selects(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    result = sim.run(
        "deploy", "--workspace-id", "ws-1", cwd=project(tmp_path, AF2.format(v="12.5.0"))
    )
    assert result.returncode == 0
    assert (
        "Only one Deployment was found. Using the following Deployment by default: \n\n"
        " Deployment Name: prod\n Deployment ID: dep-1\n"
    ) in result.stdout
    assert sim.deployment("dep-1")["deploy_count"] == 1


def test_org_token_without_workspace_flag_fails(sim: SimHandle, tmp_path: Path) -> None:
    sim.add_deployment("dep-1", "prod")
    result = sim.run("deploy", "dep-1", cwd=project(tmp_path, AF2.format(v="12.5.0")))
    assert result.returncode == 1
    assert result.stderr == (
        "Error: failed to find a valid workspace: failed to get current Workspace: current "
        "workspace context not set, you can switch to a workspace with \n\tastro workspace switch "
        "WORKSPACEID\n"
    )
