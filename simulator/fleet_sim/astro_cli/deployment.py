"""``astro deployment list`` and ``astro deployment inspect``, with the CLI's output shapes."""

from __future__ import annotations

import sys

from fleet_sim.astro_cli.context import (
    NOT_IN_WORKSPACE,
    CliError,
    Context,
    deployment_named,
    out,
    select_deployment,
)
from fleet_sim.astro_cli.goformat import GoTime, go_json, go_table, go_value, go_yaml

NO_DEPLOYMENTS = "no Deployments found in workspace"


# ------------------------------------------------------------------- list
def deployment_info(d: dict, with_workspace_name: bool) -> dict:
    """astro-cli DeploymentInfo as JSON (omitempty fields dropped when empty)."""
    info: dict[str, object] = {"name": d["name"]}
    if with_workspace_name and d.get("workspaceName"):
        info["workspaceName"] = d["workspaceName"]
    info["namespace"] = d.get("namespace", "")
    if d.get("type") != "STANDARD" and d.get("clusterName"):
        info["clusterName"] = d["clusterName"]
    if d.get("cloudProvider"):
        info["cloudProvider"] = d["cloudProvider"]
    if d.get("region"):
        info["region"] = d["region"]
    info.update(
        deploymentId=d["id"],
        runtimeVersion=d.get("runtimeVersion", ""),
        airflowVersion=d.get("airflowVersion", ""),
        isDagDeployEnabled=bool(d.get("isDagDeployEnabled")),
        isCicdEnforced=bool(d.get("isCicdEnforced")),
        type=d.get("type", ""),
        isRemoteExecutionEnabled=bool((d.get("remoteExecution") or {}).get("enabled")),
    )
    return info


def list_command(ctx: Context, values: dict, given: set[str]) -> None:
    """``astro deployment list [--all] [--workspace-id W] [--json | -o table|json]``."""
    if "json" in given and "output" in given:
        raise CliError(
            "if any flags in the group [json output] are set none of the others can be; "
            "[json output] were all set"
        )
    fmt = "json" if values["json"] else str(values["output"] or "table")
    if fmt not in ("table", "json", "template"):
        raise CliError(f'invalid format "{fmt}" (must be table, json, or template)')
    if fmt == "template":
        raise CliError("astro-sim does not render Go templates; use --json or -o table")
    every = bool(values["all"])
    # astro-cli's deploymentList resolves the workspace before it looks at --all: without
    # a flag or a context workspace, --all fails too.
    try:
        workspace = ctx.coalesce_workspace(str(values["workspace-id"] or ""))
    except CliError as exc:
        raise CliError(f"failed to find a valid workspace: {exc}") from exc
    if every:
        workspace = ""
    deployments = ctx.list_deployments(workspace)
    deployments.sort(key=lambda d: d["name"], reverse=True)
    infos = [deployment_info(d, every) for d in deployments]
    if fmt == "json":
        sys.stdout.write(go_json({"deployments": infos}, 2, escape_html=False) + "\n")
        return
    if not infos and not every and workspace:
        out(f"{NO_DEPLOYMENTS} {workspace}")
        return
    header = [
        "NAME",
        *(["WORKSPACE"] if every else []),
        "NAMESPACE",
        "CLUSTER",
        "CLOUD PROVIDER",
        "REGION",
        "DEPLOYMENT ID",
        "RUNTIME VERSION",
        "DAG DEPLOY ENABLED",
        "CI-CD ENFORCEMENT",
        "DEPLOYMENT TYPE",
        "REMOTE EXECUTION",
    ]
    rows = []
    for i in infos:
        row = [
            i["name"],
            *([str(i.get("workspaceName", ""))] if every else []),
            str(i["namespace"]),
            _na(i.get("clusterName")),
            _na(i.get("cloudProvider")),
            _na(i.get("region")),
            str(i["deploymentId"]),
            f"{i['runtimeVersion']} (based on Airflow {i['airflowVersion']})",
            _b(i["isDagDeployEnabled"]),
            _b(i["isCicdEnforced"]),
            str(i["type"]),
            _b(i["isRemoteExecutionEnabled"]),
        ]
        rows.append(row)
    sys.stdout.write(go_table(header, rows))


def _na(value: object) -> str:
    return str(value) if value else "N/A"


def _b(value: object) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------- inspect
def inspect_document(d: dict, template: bool) -> dict:
    """The inspect output document, fields in astro-cli's struct order."""
    is_standard = d.get("type") == "STANDARD"
    config: dict[str, object] = {
        "name": d["name"],
        "description": d.get("description", ""),
        "runtime_version": d.get("runtimeVersion", ""),
    }
    if d.get("isDagDeployEnabled"):
        config["dag_deploy_enabled"] = True
    config["ci_cd_enforcement"] = bool(d.get("isCicdEnforced"))
    if d.get("schedulerSize"):
        config["scheduler_size"] = d["schedulerSize"]
    config.update(
        is_high_availability=bool(d.get("isHighAvailability")),
        is_development_mode=bool(d.get("isDevelopmentMode")),
        executor=d.get("executor", ""),
        scheduler_count=int(d.get("schedulerReplicas") or 0),
    )
    if not is_standard and d.get("clusterName"):
        config["cluster_name"] = d["clusterName"]
    config.update(
        workspace_name=d.get("workspaceName", ""),
        deployment_type=d.get("type", ""),
        cloud_provider=d.get("cloudProvider", ""),
        region=d.get("region", ""),
        default_task_pod_cpu=d.get("defaultTaskPodCpu", ""),
        default_task_pod_memory=d.get("defaultTaskPodMemory", ""),
        resource_quota_cpu=d.get("resourceQuotaCpu", ""),
        resource_quota_memory=d.get("resourceQuotaMemory", ""),
        workload_identity="",
    )
    queues = [
        {
            "name": q.get("name", ""),
            "max_worker_count": q.get("maxWorkerCount", 0),
            "min_worker_count": q.get("minWorkerCount", 0),
            "worker_concurrency": q.get("workerConcurrency", 0),
            "worker_type": q.get("astroMachine", ""),
            "pod_cpu": q.get("podCpu", ""),
            "pod_ram": q.get("podMemory", ""),
        }
        for q in d.get("workerQueues") or []
    ]
    body: dict[str, object] = {"configuration": config, "worker_queues": queues}
    if not template:
        body["metadata"] = {
            "deployment_id": d["id"],
            "workspace_id": d.get("workspaceId", ""),
            "cluster_id": "N/A" if is_standard else d.get("clusterId", ""),
            "release_name": "N/A"
            if d.get("type") in ("STANDARD", "DEDICATED")
            else d.get("namespace", ""),
            "airflow_version": d.get("airflowVersion", ""),
            "current_tag": d.get("imageTag", ""),
            "status": d.get("status", ""),
            "created_at": GoTime.parse(d["createdAt"]),
            "updated_at": GoTime.parse(d["updatedAt"]),
            "deployment_url": (
                f"cloud.astronomer.io/{d.get('workspaceId', '')}/deployments/{d['id']}"
            ),
            "webserver_url": d.get("webServerUrl", ""),
            "airflow_api_url": d.get("webServerAirflowApiUrl", ""),
        }
    return {"deployment": body}


def inspect_command(ctx: Context, values: dict, args: list[str]) -> None:
    """``astro deployment inspect [ID] [-o yaml|json] [--key a.b] [-c] [--workspace-id W]``."""
    workspace = ctx.coalesce_workspace(str(values["workspace-id"] or ""))
    deployment_id = args[0] if args else ""
    name = str(values["deployment-name"] or "")
    clean = bool(values["clean-output"])
    deployments = ctx.listed_for(workspace)
    if not deployments:
        out(f"{NO_DEPLOYMENTS} {workspace}")
        return
    if deployment_id and name and not clean:
        out(
            "Both a Deployment ID and Deployment name have been supplied. "
            f"The Deployment ID {deployment_id} will be used"
        )
    chosen: dict | None = None
    if not deployment_id and name:
        chosen = deployment_named(deployments, name)
    elif not deployment_id:
        chosen = select_deployment(deployments, "Select a Deployment", clean)
    else:
        chosen = next((d for d in deployments if d["id"] == deployment_id), None)
    if chosen is None:
        raise CliError(NOT_IN_WORKSPACE)
    document = inspect_document(ctx.get_deployment(chosen["id"]), bool(values["template"]))
    key = str(values["key"] or "")
    if key:
        out(go_value(_lookup(document["deployment"], key)))
        return
    if values["output"] == "json":
        sys.stdout.write(go_json(document, 4) + "\n")
    else:
        sys.stdout.write(go_yaml(document))


def _lookup(document: dict, key: str) -> object:
    parts = key.lower().split(".")
    if len(parts) > 2:
        raise CliError(f"requested key {key} not found in deployment")
    value: object = document
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            raise CliError(f"requested key {key} not found in deployment")
        value = value[part]
    return value
