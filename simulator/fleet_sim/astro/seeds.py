"""What a simulated Deployment is made from: a seed spec, checked field by field.

The same spec comes from the admin API (``POST /_sim/deployments``), from the test
fixture's ``add_deployment`` and from a seed file (``fleet-sim seed --file``)::

    deployments:
      - {id: cm1salesdev0001, name: sales-etl-dev, workspace_id: ws-analytics,
         runtime_version: 12.1.0, dags: [fleet_canary]}

Every problem is reported, a seed file's with ``file:line: deployments[i].key``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from fleet_sim import yamlfile
from fleet_sim.errors import InputError, located
from fleet_sim.runtime_versions import is_valid_runtime_version

STATUSES = ("CREATING", "DEPLOYING", "HEALTHY", "HIBERNATING", "UNHEALTHY", "UNKNOWN")
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
REQUIRED = ("id", "name", "workspace_id", "runtime_version")
FIELDS: dict[str, type] = {
    "id": str,
    "name": str,
    "workspace_id": str,
    "workspace_name": str,
    "organization_id": str,
    "runtime_version": str,
    "airflow_version": str,
    "status": str,
    "description": str,
    "image_tag": str,
    "namespace": str,
    "is_dag_deploy_enabled": bool,
    "is_cicd_enforced": bool,
    "type": str,
    "executor": str,
    "cloud_provider": str,
    "region": str,
    "import_errors": list,
    "dags": list,
    "airflow_api_url": str,
}
_KINDS = {str: "a non-empty string", bool: "true or false", list: "a list"}


def problems(spec: object, *, partial: bool = False) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with a seed spec; ``partial``: an update, where
    nothing is required and the id cannot change."""
    if not isinstance(spec, dict):
        return [("", "expected a mapping with at least " + ", ".join(REQUIRED))]
    found: list[tuple[str, str]] = []
    allowed = [k for k in FIELDS if not (partial and k == "id")]
    for key, value in spec.items():
        if key not in allowed:
            found.append((str(key), f"unknown field; known: {', '.join(sorted(allowed))}"))
        elif not isinstance(value, FIELDS[key]) or (FIELDS[key] is str and not value):
            found.append((key, f"expected {_KINDS[FIELDS[key]]}"))
        else:
            found.extend(_value_problems(key, value))
    if not partial:
        found.extend((key, "this field is required") for key in REQUIRED if key not in spec)
    return found


def _value_problems(key: str, value: object) -> list[tuple[str, str]]:
    if key == "id" and not ID.fullmatch(str(value)):
        return [(key, f"{value!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")]
    if key == "status" and value not in STATUSES:
        return [(key, f"expected one of {', '.join(STATUSES)}")]
    if key == "runtime_version" and not is_valid_runtime_version(str(value)):
        return [(key, f"{value!r} is not an Astro Runtime version (X.Y.Z, or A.B-N for "
                      "Airflow 3)")]
    if key == "dags":
        return [p for i, dag in enumerate(value) for p in _dag_problems(f"dags[{i}]", dag)]
    if key == "import_errors":
        return [p for i, err in enumerate(value)
                for p in _import_error_problems(f"import_errors[{i}]", err)]
    return []


def _dag_problems(key: str, dag: object) -> list[tuple[str, str]]:
    if isinstance(dag, str):
        dag = {"dag_id": dag}
    if not (isinstance(dag, dict) and isinstance(dag.get("dag_id"), str)
            and DAG_ID.fullmatch(dag["dag_id"])):
        return [(key, "expected a DAG id or {dag_id, is_paused, tasks, schedule_seconds, "
                      "history_seconds, run_seconds}")]
    tasks = dag.get("tasks", ["canary"])
    if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks)):
        return [(f"{key}.tasks", "expected a list of task ids")]
    if not isinstance(dag.get("is_paused", True), bool):
        return [(f"{key}.is_paused", "expected true or false")]
    for name in ("schedule_seconds", "history_seconds", "run_seconds"):
        value = dag.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
                name == "schedule_seconds" and value == 0):
            return [(f"{key}.{name}", "expected a number of seconds"
                     + (" > 0" if name == "schedule_seconds" else " >= 0"))]
    if "schedule_seconds" not in dag and ("history_seconds" in dag or "run_seconds" in dag):
        return [(key, "history_seconds and run_seconds need schedule_seconds")]
    return []


def _import_error_problems(key: str, err: object) -> list[tuple[str, str]]:
    if not (isinstance(err, dict) and isinstance(err.get("filename"), str)):
        return [(key, "expected {filename, stack_trace[, timestamp]}")]
    stamp = err.get("timestamp")
    if stamp is not None and parse_time(stamp) is None:
        return [(f"{key}.timestamp", f"{stamp!r} is not an ISO 8601 time")]
    return []


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (UTC when it names no zone), else None."""
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def check(spec: object, *, partial: bool = False) -> dict:
    """The spec, or InputError listing every ``deployment: key: problem``."""
    found = problems(spec, partial=partial)
    if found:
        raise InputError("\n".join(f"deployment: {k}: {p}" if k else f"deployment: {p}"
                                   for k, p in found))
    assert isinstance(spec, dict)
    return spec


def load_seed_file(path: Path) -> list[dict]:
    """The Deployments of a seed file; InputError naming ``file:line: key`` of every problem
    (nothing is seeded unless the whole file is right)."""
    root = yamlfile.compose(path, "seed file")
    entries = None
    if root is not None and root.tag.endswith(":map"):
        entries = next((node for key, node, _ in yamlfile.mapping_items(root)
                        if key == "deployments"), None)
    if entries is None or not entries.tag.endswith(":seq"):
        line = yamlfile.line(entries or root) if (entries or root) is not None else None
        raise InputError(located(path, line, "deployments", "expected a list of Deployments "
                                 "under a top-level 'deployments:' (docs/simulator.md)"))
    found: list[tuple[int, str]] = []  # (line, message), reported in the file's order
    specs: list[dict] = []
    seen: dict[str, int] = {}
    for i, node in enumerate(entries.value):
        spec = yamlfile.value(node)
        for key, problem in problems(spec):
            line = _line_of(node, key)
            found.append((line, located(path, line, f"deployments[{i}]"
                                        + (f".{key}" if key else ""), problem)))
        if isinstance(spec, dict) and isinstance(spec.get("id"), str):
            if spec["id"] in seen:
                line = _line_of(node, "id")
                found.append((line, located(path, line, f"deployments[{i}].id",
                                            f"{spec['id']} is listed twice (also "
                                            f"deployments[{seen[spec['id']]}])")))
            seen.setdefault(spec["id"], i)
            specs.append(spec)
    if found:
        raise InputError("\n".join(message for _, message in sorted(found)))
    return specs


def _line_of(entry: yaml.Node, key: str) -> int:
    """The line of ``key``'s entry (``dags[2].tasks``: of ``dags``), else of the entry."""
    head = re.split(r"[.\[]", key, maxsplit=1)[0]
    if head and entry.tag.endswith(":map"):
        for name, _, line in yamlfile.mapping_items(entry):
            if name == head:
                return line
    return yamlfile.line(entry)
