"""The DAGs of a simulated Deployment and their runs, computed for "now" like everything else.

A Deployment's ``dags`` maps a DAG id to ``{"tasks": [...], "pauses": [[t, paused], ...],
"runs": {run_id: {...}}}``. Seeded DAGs start paused, as Airflow's do
(``dags_are_paused_at_creation``). A run is queued when triggered and starts at the first
moment its DAG is unpaused (a paused DAG's runs wait, as in Airflow); it then runs for
``dag_run_seconds`` (scaled) and ends as its trigger-time fate says: ``success``,
``failed`` (fault ``dag_run_fails``: the DAG's last task fails) or never (fault
``dag_run_stuck``: it keeps running).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

DEFAULT_TASKS = ("canary",)
START_DELAY = 0.05  # s between a run being queued and the scheduler starting it (scaled)


def seed_dags(specs: list, t: float) -> dict[str, dict]:
    """DAGs from a checked seed (astro.seeds): ids, or ``{dag_id, is_paused (true), tasks}``."""
    out: dict[str, dict] = {}
    for spec in specs:
        if isinstance(spec, str):
            spec = {"dag_id": spec}
        out[spec["dag_id"]] = {"tasks": spec.get("tasks", list(DEFAULT_TASKS)),
                               "pauses": [[t, spec.get("is_paused", True)]], "runs": {},
                               "created_at": t}
    return out


def is_paused(dag: dict, t: float) -> bool:
    """Whether the DAG is paused at ``t``."""
    paused = True
    for when, value in dag["pauses"]:
        if when > t:
            break
        paused = value
    return paused


def set_paused(dag: dict, paused: bool, t: float) -> None:
    """Pause or unpause from ``t`` on."""
    if is_paused(dag, t) != paused:
        dag["pauses"].append([t, paused])


def new_run_id(t: float, af3: bool) -> str:
    """Airflow's id for a manual run: ``manual__<logical date>`` (3.x adds a random tail)."""
    stamp = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
    return f"manual__{stamp}_{secrets.token_urlsafe(6)[:8]}" if af3 else f"manual__{stamp}"


def trigger(dag: dict, run_id: str, conf: dict, t: float, fate: str) -> dict:
    """Queue a run; ``fate`` (success, failed, stuck) is decided now, from the faults."""
    run = {"run_id": run_id, "conf": conf, "queued_at": t, "fate": fate}
    dag["runs"][run_id] = run
    return run


def started_at(dag: dict, run: dict, t: float, delay: float) -> float | None:
    """When the run started (None: still queued at ``t``): once queued and unpaused."""
    earliest = run["queued_at"] + delay
    candidates = [earliest] + [when for when, paused in dag["pauses"]
                               if not paused and when > earliest]
    for moment in candidates:
        if moment <= t and not is_paused(dag, moment):
            return moment
    return None


def run_times(dag: dict, run: dict, t: float, delay: float,
              duration: float) -> tuple[str, float | None, float | None]:
    """(state, start, end) of a run at ``t``."""
    start = started_at(dag, run, t, delay)
    if start is None:
        return "queued", None, None
    end = start + duration
    if run["fate"] == "stuck" or t < end:
        return "running", start, None
    return run["fate"], start, end


def task_states(dag: dict, state: str) -> list[tuple[str, str | None, int]]:
    """(task id, state, try number) of each task of a run in ``state`` (tasks run in order)."""
    tasks = dag["tasks"]
    if state == "queued":
        return [(task, None, 0) for task in tasks]
    if state == "running":
        return [(tasks[0], "running", 1)] + [(task, None, 0) for task in tasks[1:]]
    if state == "success":
        return [(task, "success", 1) for task in tasks]
    # failed: the last task fails; the ones before it succeeded
    return [(task, "success", 1) for task in tasks[:-1]] + [(tasks[-1], "failed", 1)]
