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

import yaml

from upgrade.errors import Problem, ProblemsError

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
    """Check one Deployment's fault mapping; raises ProblemsError listing every problem."""
    if not isinstance(spec, dict):
        raise ProblemsError([Problem(where, None, "", "expected a mapping of fault fields")])
    problems = []
    for field, value in spec.items():
        why = check_fault_value(str(field), value)
        if why:
            problems.append(Problem(where, None, str(field), why))
    if problems:
        raise ProblemsError(problems)
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
    """Read a faults YAML file; problems name the file, line and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProblemsError(
            [Problem(str(path), None, "", f"cannot read the faults file: {exc}")]
        ) from exc
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ProblemsError([Problem(str(path), line, "", f"not valid YAML: {exc}")]) from exc
    if root is None:
        return {}
    problems: list[Problem] = []
    out: dict[str, dict] = {}
    faults_node = _mapping_get(root, "faults")
    if not isinstance(root, yaml.MappingNode) or faults_node is None:
        line = root.start_mark.line + 1
        raise ProblemsError(
            [
                Problem(
                    str(path),
                    line,
                    "faults",
                    "expected a top-level 'faults:' mapping of Deployment id -> fault fields",
                )
            ]
        )
    for key_node, _ in root.value:
        if key_node.value != "faults":
            problems.append(
                Problem(
                    str(path),
                    key_node.start_mark.line + 1,
                    str(key_node.value),
                    "unknown top-level key; only 'faults' is allowed",
                )
            )
    if not isinstance(faults_node, yaml.MappingNode):
        raise ProblemsError(
            [
                Problem(
                    str(path),
                    faults_node.start_mark.line + 1,
                    "faults",
                    "expected a mapping of Deployment id -> fault fields",
                )
            ]
        )
    for dep_key, dep_node in faults_node.value:
        dep_id = dep_key.value
        if not isinstance(dep_node, yaml.MappingNode):
            problems.append(
                Problem(
                    str(path),
                    dep_node.start_mark.line + 1,
                    f"faults.{dep_id}",
                    "expected a mapping of fault fields",
                )
            )
            continue
        spec = {}
        for field_key, value_node in dep_node.value:
            value = yaml.load(yaml.serialize(value_node), Loader=yaml.CSafeLoader)
            why = check_fault_value(field_key.value, value)
            if why:
                problems.append(
                    Problem(
                        str(path),
                        field_key.start_mark.line + 1,
                        f"faults.{dep_id}.{field_key.value}",
                        why,
                    )
                )
            else:
                spec[field_key.value] = value
        out[str(dep_id)] = spec
    if problems:
        raise ProblemsError(problems)
    return out


def _mapping_get(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if k.value == key:
            return v
    return None
