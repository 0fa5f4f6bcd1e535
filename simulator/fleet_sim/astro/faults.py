"""Fault specifications: what can go wrong for one simulated Deployment.

A fault set is a flat mapping of the fields in ``FAULT_FIELDS``. Deploy-time
faults are one-shot (consumed by the next deploy that reaches them) unless the
set says ``persistent: true``; the Airflow API counters (``airflow_5xx``,
``airflow_hang``) count down per call; ``missing`` and the Airflow health and DAG run
faults last until cleared.
The YAML file format is ``faults: {<deployment id>: {<field>: <value>}}``.
"""

from __future__ import annotations

from pathlib import Path

from fleet_sim import yamlfile
from fleet_sim.errors import InputError, located

NOOP_KINDS = ("uncommitted", "workspace_mismatch", "no_dags_declined")

# field -> (kind, one-line meaning). Kinds: str, bool, count (int >= 0),
# seconds (number >= 0), noop (one of NOOP_KINDS), status5xx (500..599).
FAULT_FIELDS: dict[str, tuple[str, str]] = {
    "deploy_error": (
        "str",
        "finalizing the deploy fails; astro-sim prints 'Error: <text>', exit 1",
    ),
    "deploy_noop": ("noop", "astro-sim exits 0 without deploying through this trap"),
    "deploy_extra_seconds": ("seconds", "the image build takes this much longer (scaled)"),
    "stuck_deploying": ("bool", "after the deploy the status stays DEPLOYING"),
    "unhealthy_after_deploy": ("bool", "after the deploy the status ends UNHEALTHY"),
    "reported_runtime_version": ("str", "after the deploy the Deployment reports this Runtime"),
    "import_errors_after_deploy": ("count", "this many new DAG import errors after the deploy"),
    "scheduler_stale_after_deploy": ("bool", "the scheduler heartbeat stops at the deploy"),
    "stale_heartbeat": (
        "bool",
        "the scheduler's heartbeat freezes (from when this is set, or a later rollout's end); "
        "Airflow still reports it healthy for 30 s",
    ),
    "triggerer_unhealthy": ("bool", "the triggerer is stopped: unhealthy, heartbeat frozen"),
    "dag_processor_unhealthy": (
        "bool", "the DAG processor is stopped: unhealthy, heartbeat frozen"),
    "dag_run_fails": ("bool", "DAG runs triggered from now on fail (the DAG's last task)"),
    "dag_run_stuck": ("bool", "DAG runs triggered from now on keep running"),
    "scheduled_runs_fail": (
        "bool",
        "scheduled DAG runs fail from the end of the next rollout (a Runtime that breaks a "
        "provider) until this is cleared (the fix); the runs that failed stay failed"),
    "airflow_5xx": ("count", "the next N Airflow API calls answer 5xx"),
    "airflow_5xx_status": ("status5xx", "the status code for airflow_5xx (default 503)"),
    "airflow_hang": ("count", "the next N Airflow API calls hang for hang_seconds"),
    "missing": ("bool", "the Deployment answers 404 everywhere, as if deleted"),
    "persistent": ("bool", "deploy-time faults fire on every deploy instead of once"),
}

# Consumed when a deploy is finalized (unless persistent).
DEPLOY_TIME_FIELDS = (
    "deploy_error",
    "deploy_extra_seconds",
    "stuck_deploying",
    "unhealthy_after_deploy",
    "reported_runtime_version",
    "import_errors_after_deploy",
    "scheduler_stale_after_deploy",
)


def check_fault_value(field: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for ``field`` (None when it is)."""
    if field not in FAULT_FIELDS:
        return f"unknown fault field; known fields: {', '.join(sorted(FAULT_FIELDS))}"
    kind = FAULT_FIELDS[field][0]
    if value is None:
        return None  # None clears the field
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str" and not (isinstance(value, str) and value.strip()):
        return "expected a non-empty string"
    if kind == "bool" and not isinstance(value, bool):
        return "expected true or false"
    if kind == "count" and not (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ):
        return "expected a whole number >= 0"
    if kind == "seconds" and not (is_number and value >= 0):
        return "expected a number of seconds >= 0"
    if kind == "noop" and value not in NOOP_KINDS:
        return f"expected one of: {', '.join(NOOP_KINDS)}"
    if kind == "status5xx" and not (isinstance(value, int) and 500 <= value <= 599):
        return "expected an HTTP status code from 500 to 599"
    return None


def validate_fault_set(spec: object, where: str = "faults") -> dict:
    """Check one Deployment's fault mapping; InputError listing every problem."""
    if not isinstance(spec, dict):
        raise InputError(f"{where}: expected a mapping of fault fields")
    problems = [f"{where}.{field}: {why}" for field, value in spec.items()
                if (why := check_fault_value(str(field), value))]
    if problems:
        raise InputError("\n".join(problems))
    return dict(spec)


def merge_faults(current: dict, update: dict) -> dict:
    """Apply ``update`` to ``current``: a None value removes that field."""
    merged = dict(current)
    for field, value in update.items():
        if value is None:
            merged.pop(field, None)
        else:
            merged[field] = value
    return merged


def load_faults_file(path: Path) -> dict[str, dict]:
    """Read a faults YAML file (``faults: {<id>: {<field>: <value>}}``); InputError naming
    the file, line and key of every problem."""
    root = yamlfile.compose(path, "faults file")
    if root is None:
        return {}
    faults = None
    problems: list[str] = []
    if root.tag.endswith(":map"):
        for key, node, line in yamlfile.mapping_items(root):
            if key == "faults":
                faults = node
            else:
                problems.append(located(path, line, key,
                                        "unknown top-level key; only 'faults' is allowed"))
    if faults is None or not faults.tag.endswith(":map"):
        where = yamlfile.line(faults if faults is not None else root)
        raise InputError(located(path, where, "faults", "expected a mapping of Deployment id "
                                 "-> fault fields under a top-level 'faults:'"))
    found: dict[str, dict] = {}
    for dep_id, dep_node, _ in yamlfile.mapping_items(faults):
        if not dep_node.tag.endswith(":map"):
            problems.append(located(path, yamlfile.line(dep_node), f"faults.{dep_id}",
                                    "expected a mapping of fault fields"))
            continue
        spec = {}
        for field, node, line in yamlfile.mapping_items(dep_node):
            value = yamlfile.value(node)
            why = check_fault_value(field, value)
            if why:
                problems.append(located(path, line, f"faults.{dep_id}.{field}", why))
            else:
                spec[field] = value
        found[dep_id] = spec
    if problems:
        raise InputError("\n".join(problems))
    return found
