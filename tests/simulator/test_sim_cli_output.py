"""Output shapes of ``astro-sim deployment inspect|list`` and the CLI's refusals,
compared with recorded examples of `deployment list` and `deployment inspect`."""

from __future__ import annotations

import json
import re

import yaml
from simulators import SimHandle

from fleet_sim import lifecycle
from fleet_sim.apitoken import make_token

INSPECT_TOP = ["configuration", "worker_queues", "metadata"]
METADATA = [
    "deployment_id",
    "workspace_id",
    "cluster_id",
    "release_name",
    "airflow_version",
    "current_tag",
    "status",
    "created_at",
    "updated_at",
    "deployment_url",
    "webserver_url",
    "airflow_api_url",
]
LIST_KEYS = [
    "name",
    "namespace",
    "cloudProvider",
    "region",
    "deploymentId",
    "runtimeVersion",
    "airflowVersion",
    "isDagDeployEnabled",
    "isCicdEnforced",
    "type",
    "isRemoteExecutionEnabled",
]


def test_inspect_yaml_shape(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="11.8.0")
    result = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-1")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("deployment:\n    configuration:\n        name: prod\n")
    assert "Using an Astro API Token" not in result.stdout  # inspect has no preamble
    doc = yaml.safe_load(result.stdout)["deployment"]
    assert list(doc) == INSPECT_TOP
    assert list(doc["metadata"]) == METADATA
    meta = doc["metadata"]
    assert (meta["status"], meta["airflow_version"], meta["cluster_id"]) == (
        "HEALTHY",
        "2.9.3",
        "N/A",
    )
    assert meta["airflow_api_url"] == f"{sim.url[7:]}/d/dep-1/api/v1"
    assert meta["deployment_url"] == "cloud.astronomer.io/ws-1/deployments/dep-1"
    assert re.fullmatch(r"deploy-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d", meta["current_tag"])
    assert doc["configuration"]["runtime_version"] == "11.8.0"
    assert "        - name: default\n          max_worker_count: 10\n" in result.stdout


def test_inspect_json_uses_four_space_indent(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod")
    result = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-1", "-o", "json")
    assert result.stdout.startswith('{\n    "deployment": {\n        "configuration": {\n')
    doc = json.loads(result.stdout)["deployment"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", doc["metadata"]["created_at"])


def test_inspect_key_prints_go_values(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod", runtime_version="3.1-12")

    def key(k: str) -> str:
        return sim.run(
            "deployment", "inspect", "dep-1", "--workspace-id", "ws-1", "--key", k
        ).stdout

    assert key("metadata.status") == "HEALTHY\n"
    assert key("configuration.runtime_version") == "3.1-12\n"
    assert key("metadata.airflow_api_url") == f"{sim.url[7:]}/d/dep-1/api/v2\n"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC\n", key("metadata.created_at")
    )
    assert key("Configuration.CI_CD_Enforcement") == "false\n"
    assert key("metadata").startswith("map[airflow_api_url:")
    bad = sim.run(
        "deployment",
        "inspect",
        "dep-1",
        "--workspace-id",
        "ws-1",
        "--key",
        "deployment.metadata.status",
    )
    assert (bad.returncode, bad.stderr) == (
        1,
        "Error: requested key deployment.metadata.status not found in deployment\n",
    )


def test_inspect_needs_the_right_workspace(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod", workspace_id="ws-1")
    sim.add_deployment("dep-2", "other", workspace_id="ws-2")
    wrong = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-2")
    assert wrong.returncode == 1
    assert wrong.stderr == (
        "Error: the Deployment specified was not found in this workspace. Your account or API Key "
        "may not have access to the deployment specified\n"
    )
    empty = sim.run("deployment", "inspect", "dep-1", "--workspace-id", "ws-9")
    assert (empty.returncode, empty.stdout) == (0, "no Deployments found in workspace ws-9\n")
    scoped = sim.run(
        "deployment",
        "inspect",
        "dep-1",
        "--key",
        "metadata.workspace_id",
        env={"ASTRO_API_TOKEN": make_token("org-sim", "ws-1")},
    )
    assert scoped.stdout == "ws-1\n"


def test_list_json_has_the_preamble_and_no_status(sim: SimHandle) -> None:
    sim.add_deployment("a", "alpha")
    sim.add_deployment("b", "beta", runtime_version="3.0-7")
    sim.add_deployment("c", "gamma", workspace_id="ws-2")
    result = sim.run("deployment", "list", "--workspace-id", "ws-1", "--json")
    assert result.returncode == 0
    preamble, _, body = result.stdout.partition("\n")
    assert preamble == "Using an Astro API Token"
    assert body.startswith('{\n  "deployments": [\n    {\n')
    data = json.loads(body)["deployments"]
    assert [d["name"] for d in data] == ["beta", "alpha"]  # name descending
    assert all(list(d) == LIST_KEYS for d in data)
    assert data[0]["runtimeVersion"] == "3.0-7"
    every = json.loads(sim.run("deployment", "list", "--all", "--json", "--workspace-id", "ws-1")
                       .stdout.partition("\n")[2])
    assert [d["workspaceName"] for d in every["deployments"]] == ["ws-2", "ws-1", "ws-1"]
    # astro-cli's deploymentList resolves the workspace before --all: an Organization token
    # (no workspace in its context) and no flag fail even with --all.
    orphan = sim.run("deployment", "list", "--all", "--json")
    assert orphan.returncode == 1 and orphan.stdout == "Using an Astro API Token\n"
    assert orphan.stderr == (
        "Error: failed to find a valid workspace: failed to get current Workspace: current "
        "workspace context not set, you can switch to a workspace with \n"
        "\tastro workspace switch WORKSPACEID\n")
    empty = sim.run("deployment", "list", "--workspace-id", "ws-9", "--json")
    assert json.loads(empty.stdout.partition("\n")[2]) == {"deployments": []}


def test_list_table(sim: SimHandle) -> None:
    sim.add_deployment("a", "alpha", runtime_version="11.3.0")
    table = sim.run("deployment", "ls", "--workspace-id", "ws-1").stdout.splitlines()
    assert table[1].startswith(" NAME      NAMESPACE     CLUSTER     CLOUD PROVIDER     REGION")
    assert "11.3.0 (based on Airflow 2.9.1)" in table[2]
    empty = sim.run("deployment", "list", "--workspace-id", "ws-9")
    assert empty.stdout == "Using an Astro API Token\nno Deployments found in workspace ws-9\n"


def test_flag_errors_look_like_cobra(sim: SimHandle) -> None:
    unknown = sim.run("deployment", "list", "--bogus")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("Error: unknown flag: --bogus\n")
    short = sim.run("deployment", "inspect", "-x")
    assert short.stderr.startswith("Error: unknown shorthand flag: 'x' in -x\n")
    bad = sim.run("deployment", "list", "-o", "xml", "--workspace-id", "ws-1")
    assert bad.stderr == 'Error: invalid format "xml" (must be table, json, or template)\n'
    assert sim.run("bogus").stderr.startswith('Error: unknown command "bogus" for "astro"')


def test_help_and_version_need_no_server() -> None:
    import subprocess
    import sys
    from pathlib import Path

    binary = str(Path(sys.executable).parent / "astro-sim")
    result = subprocess.run([binary, "--help"], capture_output=True, text=True, check=False, env={})
    assert result.returncode == 0 and "deploy" in result.stdout
    help_deploy = subprocess.run(
        [binary, "deploy", "-h"], capture_output=True, text=True, check=False
    )
    assert "--wait-time duration" in help_deploy.stdout


def test_auth_failures(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "prod")
    args = ("deployment", "list", "--workspace-id", "ws-1")
    malformed = sim.run(*args, env={"ASTRO_API_TOKEN": "not-a-jwt"})
    assert (malformed.returncode, malformed.stderr) == (
        1,
        "Error: API Token is invalid or malformed\n",
    )
    expired = sim.run(*args, env={"ASTRO_API_TOKEN": make_token("org-sim", lifetime_seconds=-10)})
    assert expired.stdout.endswith("The given API Token sim-token has expired\n")
    assert expired.stderr == "Error: API Token is expired\n"
    no_perms = make_token("org-sim").split(".")
    import base64

    no_perms[1] = base64.urlsafe_b64encode(b'{"permissions": []}').decode().rstrip("=")
    rejected = sim.run(*args, env={"ASTRO_API_TOKEN": ".".join(no_perms)})
    assert rejected.returncode == 1
    assert rejected.stderr.startswith("Error: Unauthorized")
    none = sim.run(*args, env={"ASTRO_API_TOKEN": ""})
    assert none.returncode == 1 and "astro login" in none.stderr
    token = lifecycle.sim_env(sim.url)["ASTRO_API_TOKEN"]
    for result in (malformed, expired, rejected):
        assert token not in result.stdout + result.stderr


def test_missing_simulator_url_is_a_clear_error(sim: SimHandle) -> None:
    result = sim.run("deployment", "list", env={"ASTRO_SIM_URL": ""})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ASTRO_SIM_URL is not set")
