"""JSON shapes: the Astro platform API, the Airflow REST API and the admin view.

Field names and value formats follow the platform API's v1 Deployment object and
Airflow's REST API (v1 for Airflow 2, v2 for Airflow 3). Values Astro would compute from
real infrastructure (CPU sizes, worker queues) are fixed, plausible constants.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime

from fleet_sim.astro import dags
from fleet_sim.astro.state import AIRFLOW_HEALTH_THRESHOLD, SimState

_WORKER_QUEUE = {
    "name": "default",
    "isDefault": True,
    "astroMachine": "A5",
    "maxWorkerCount": 10,
    "minWorkerCount": 0,
    "workerConcurrency": 5,
    "podCpu": "1",
    "podMemory": "2Gi",
}


def api_time(t: float) -> str:
    """RFC 3339 with milliseconds and Z, as the Astro API writes timestamps."""
    stamp = datetime.fromtimestamp(t, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def airflow_time(t: float) -> str:
    """Airflow's ISO format with microseconds and +00:00."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def api_prefix(state: SimState, doc: dict, t: float) -> str:
    """``/d/<id>/api/v1`` or ``/api/v2``, by the running Airflow major."""
    return f"/d/{doc['id']}/api/{'v2' if state.is_af3_running(doc, t) else 'v1'}"


def platform_deployment(state: SimState, doc: dict, t: float) -> dict:
    """The Astro API ``Deployment`` object (v1)."""
    runtime = state.reported_runtime(doc)
    host = state.host
    web = f"{host}/d/{doc['id']}"
    actor = {"id": "sim-api-token", "apiTokenName": "astro-sim", "subjectType": "SERVICEKEY"}
    out = {
        "id": doc["id"],
        "name": doc["name"],
        "description": doc["description"],
        "namespace": doc["namespace"],
        "organizationId": doc["organization_id"],
        "workspaceId": doc["workspace_id"],
        "workspaceName": doc["workspace_name"],
        "airflowVersion": state.airflow_version_for(doc, runtime),
        "astroRuntimeVersion": runtime,
        "runtimeVersion": runtime,
        "status": state.status(doc, t),
        "imageRepository": f"images.astronomer.cloud/{doc['organization_id']}/{doc['namespace']}",
        "imageTag": doc["image_tag"],
        "isCicdEnforced": doc["is_cicd_enforced"],
        "isDagDeployEnabled": doc["is_dag_deploy_enabled"],
        "isHighAvailability": False,
        "isDevelopmentMode": False,
        "type": doc["type"],
        "executor": doc["executor"],
        "cloudProvider": doc["cloud_provider"],
        "region": doc["region"],
        "schedulerSize": "SMALL",
        "schedulerCpu": "1",
        "schedulerMemory": "2Gi",
        "schedulerReplicas": 1,
        "webServerCpu": "0.5",
        "webServerMemory": "1Gi",
        "webServerReplicas": 1,
        "webServerIngressHostname": web,
        "webServerUrl": f"{web}?orgId={doc['organization_id']}",
        "webServerAirflowApiUrl": doc.get("airflow_api_url") or host + api_prefix(state, doc, t),
        "apiUrl": "http://" + host + api_prefix(state, doc, t),
        "uiUrl": f"http://{web}?orgId={doc['organization_id']}",
        "defaultTaskPodCpu": "0.25",
        "defaultTaskPodMemory": "0.5Gi",
        "resourceQuotaCpu": "10",
        "resourceQuotaMemory": "20Gi",
        "workerQueues": [{"id": f"wq-{doc['id']}", **_WORKER_QUEUE}],
        "createdAt": api_time(doc["created_at"]),
        "updatedAt": api_time(doc["updated_at"]),
        "createdBy": actor,
        "updatedBy": actor,
    }
    if doc["dag_tarball_version"]:
        out["dagTarballVersion"] = doc["dag_tarball_version"]
        out["desiredDagTarballVersion"] = doc["dag_tarball_version"]
    return out


def clock(state: SimState) -> dict:
    """The admin view of the simulator's clock."""
    t = state.now()
    return {"mode": state.clock.mode, "now": api_time(t), "epoch": t,
            "time_scale": float(state.config["time_scale"])}


def platform_deploy(host: str, doc: dict, deploy: dict) -> dict:
    """The Astro API ``Deploy`` object."""
    out = {
        "id": deploy["id"],
        "deploymentId": doc["id"],
        "type": deploy["type"],
        "status": deploy["status"],
        "imageRepository": deploy["image_repository"],
        "imageTag": deploy["image_tag"],
        "description": deploy["description"],
        "isDagDeployEnabled": doc["is_dag_deploy_enabled"],
        "createdAt": api_time(deploy["created_at"]),
        "updatedAt": api_time(deploy["finalized_at"] or deploy["created_at"]),
    }
    if doc["is_dag_deploy_enabled"] and deploy["type"] != "IMAGE_ONLY":
        # Never dereferenced: astro-sim simulates the DAG upload locally.
        out["dagsUploadUrl"] = f"http://{host}/_sim/dags-upload/{doc['id']}/{deploy['id']}"
    if deploy["dag_tarball_version"]:
        out["dagTarballVersion"] = deploy["dag_tarball_version"]
    if deploy["runtime_version"]:
        out["astroRuntimeVersion"] = deploy["runtime_version"]
        out["airflowVersion"] = deploy["airflow_version"]
    if deploy["git"]:
        out["git"] = deploy["git"]
    return out


def organization(org_id: str, created_at: float) -> dict:
    """The Astro API ``Organization`` object (``product`` is read by astro-cli)."""
    return {
        "id": org_id,
        "name": "Simulated Organization",
        "product": "HOSTED",
        "createdAt": api_time(created_at),
        "updatedAt": api_time(created_at),
    }


def deployment_options(releases: list[dict]) -> dict:
    """``GET /organizations/{org}/deployment-options``."""
    return {
        "runtimeReleases": releases,
        "executors": ["CELERY", "KUBERNETES", "ASTRO"],
        "schedulerMachines": [
            {"name": "SMALL", "spec": {"cpu": "1", "memory": "2Gi"}},
            {"name": "MEDIUM", "spec": {"cpu": "2", "memory": "4Gi"}},
            {"name": "LARGE", "spec": {"cpu": "4", "memory": "8Gi"}},
        ],
        "workerMachines": [
            {"name": "A5", "spec": {"cpu": "1", "memory": "2Gi", "concurrency": {"default": 5}}}
        ],
    }


def _beat(state: SimState, t: float) -> float:
    """The latest heartbeat at ``t``: Airflow's jobs beat every ``heartbeat_seconds``."""
    every = state.scaled("heartbeat_seconds")
    return math.floor(t / every) * every if every > 0 else t


def airflow_health(state: SimState, doc: dict, t: float) -> dict:
    """``/api/v1/health`` and ``/api/v2/monitor/health`` (same shape, ``+00:00`` on both)."""
    faults = state.faults.get(doc["id"], {})
    beat = airflow_time(_beat(state, t))
    stopped_at = t - float(state.config["stale_heartbeat_age_seconds"])
    stale = state.scheduler_stale_since(doc, t)
    frozen = state.scheduler_frozen_at(doc, t)
    if stale is not None:
        scheduler = {"status": "unhealthy", "latest_scheduler_heartbeat": airflow_time(
            stale - float(state.config["stale_heartbeat_age_seconds"]))}
    elif frozen is not None:
        # A killed scheduler: its job row still says running, so Airflow calls it healthy
        # until the heartbeat passes the threshold.
        alive = t - frozen <= AIRFLOW_HEALTH_THRESHOLD
        scheduler = {"status": "healthy" if alive else "unhealthy",
                     "latest_scheduler_heartbeat": airflow_time(frozen)}
    else:
        scheduler = {"status": "healthy", "latest_scheduler_heartbeat": beat}

    def stoppable(name: str, present: bool) -> dict:
        if faults.get(f"{name}_unhealthy"):
            return {"status": "unhealthy", f"latest_{name}_heartbeat": airflow_time(stopped_at)}
        if not present:
            return {"status": None, f"latest_{name}_heartbeat": None}
        return {"status": "healthy", f"latest_{name}_heartbeat": beat}

    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": scheduler,
        "triggerer": stoppable("triggerer", True),
        # Astro's Airflow 2 Deployments run no standalone DAG processor.
        "dag_processor": stoppable("dag_processor", state.is_af3_running(doc, t)),
    }


def airflow_version(state: SimState, doc: dict, t: float) -> dict:
    """``/version``: the running image's Airflow with an Astro local build tag."""
    running = state.running_runtime(doc, t)
    version = state.airflow_version_for(doc, running)
    commit = hashlib.sha1(version.encode()).hexdigest()
    return {"version": version + "+astro.1", "git_version": f".release:{commit}"}


def import_error(err: dict, af3: bool) -> dict:
    """One ``ImportError`` item (Airflow 3 adds ``bundle_name`` and writes ``Z`` times)."""
    stamp = airflow_time(err["timestamp"])
    out = {
        "import_error_id": err["import_error_id"],
        "timestamp": stamp.replace("+00:00", "Z") if af3 else stamp,
        "filename": err["filename"],
        "stack_trace": err["stack_trace"],
    }
    if af3:
        out["bundle_name"] = "dags-folder"
    return out


def admin_deployment(state: SimState, doc: dict, t: float) -> dict:
    """Everything the simulator knows about one Deployment (for tests)."""
    deploys = [_admin_deploy(d) for d in doc["deploys"]]
    done = [d for d in deploys if d["status"] == "DEPLOYED"]
    reported = state.reported_runtime(doc)
    return {
        "id": doc["id"],
        "name": doc["name"],
        "description": doc["description"],
        "organization_id": doc["organization_id"],
        "workspace_id": doc["workspace_id"],
        "workspace_name": doc["workspace_name"],
        "status": state.status(doc, t),
        "runtime_version": reported,
        "deployed_runtime_version": doc["runtime_version"],
        "running_runtime_version": state.running_runtime(doc, t),
        "airflow_version": state.airflow_version_for(doc, reported),
        "image_tag": doc["image_tag"],
        "is_dag_deploy_enabled": doc["is_dag_deploy_enabled"],
        "is_cicd_enforced": doc["is_cicd_enforced"],
        "web_server_airflow_api_url": state.host + api_prefix(state, doc, t),
        "deploy_count": len(done),
        "deploys": done,
        "deploy_attempts": deploys,
        "import_errors": [import_error(e, False) for e in state.visible_import_errors(doc, t)],
        "heartbeats": airflow_health(state, doc, t),
        "dags": {
            dag_id: {"is_paused": dags.is_paused(dag, t), "tasks": dag["tasks"],
                     "runs": {run_id: {"conf": run["conf"], "fate": run["fate"]}
                              for run_id, run in dag["runs"].items()}}
            for dag_id, dag in doc.get("dags", {}).items()
        },
        "rollout": doc["rollout"],
        "faults": state.faults.get(doc["id"], {}),
        "missing": bool(state.faults.get(doc["id"], {}).get("missing")),
        "created_at": api_time(doc["created_at"]),
        "updated_at": api_time(doc["updated_at"]),
    }


def _admin_deploy(d: dict) -> dict:
    return {
        "id": d["id"],
        "type": d["type"],
        "status": d["status"],
        "image_tag": d["image_tag"],
        "runtime_version": d["runtime_version"],
        "airflow_version": d["airflow_version"],
        "description": d["description"],
        "git": d["git"],
        "dag_tarball_version": d["dag_tarball_version"],
        "error": d["error"],
        "created_at": api_time(d["created_at"]),
        "deployed_at": api_time(d["finalized_at"]) if d["finalized_at"] else None,
    }
