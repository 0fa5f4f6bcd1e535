"""The DAGs of a simulated Deployment and their runs, computed for "now" like everything else.

A Deployment's ``dags`` maps a DAG id to ``{"tasks": [...], "pauses": [[t, paused], ...],
"runs": {run_id: {...}}}``. Seeded DAGs start paused, as Airflow's do
(``dags_are_paused_at_creation``). A run is queued when triggered and starts at the first
moment its DAG is unpaused (a paused DAG's runs wait, as in Airflow); it then runs for
``dag_run_seconds`` (scaled) and ends as its trigger-time fate says: ``success``,
``failed`` (fault ``dag_run_fails``: the DAG's last task fails) or never (fault
``dag_run_stuck``: it keeps running).

A seeded DAG with ``schedule_seconds`` also runs on a schedule (a scripted run history):
one ``scheduled`` run every ``schedule_seconds`` (scaled) from ``history_seconds`` (scaled)
before it was seeded, each starting at its tick when the DAG is unpaused then (no catchup,
as Astro's default), running ``run_seconds`` (scaled; default: the ``dag_run_seconds``
setting) and ending ``failed`` when it started inside one of the Deployment's
``run_fail_spans`` (fault ``scheduled_runs_fail``), else ``success``. Nothing is stored per
run: the history is computed for "now", like every other status.
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
        dag = {"tasks": spec.get("tasks", list(DEFAULT_TASKS)),
               "pauses": [[t, spec.get("is_paused", True)]], "runs": {}, "created_at": t}
        if "schedule_seconds" in spec:
            dag["schedule"] = {k: spec[k] for k in SCHEDULE_KEYS if k in spec}
        out[spec["dag_id"]] = dag
    return out


SCHEDULE_KEYS = ("schedule_seconds", "history_seconds", "run_seconds")


def scheduled_runs(dag: dict, t: float, scale: float, default_run: float,
                   fail_spans: list) -> list[dict]:
    """The DAG's scheduled runs queued by ``t``, oldest first: ``{run_id, queued_at, start,
    end (None: running), state}``; none for a DAG without a schedule."""
    spec = dag.get("schedule")
    if not spec:
        return []
    period = float(spec["schedule_seconds"]) * scale
    history = float(spec.get("history_seconds", 0)) * scale
    duration = float(spec["run_seconds"]) * scale if "run_seconds" in spec else default_run
    origin = dag["created_at"] - history
    # The first pause entry is the seeded state: it held over the seeded history too.
    out = []
    k = 0
    while period > 0 and origin + k * period <= t:
        tick = origin + k * period
        k += 1
        if _paused_at(dag, tick):
            continue
        end = tick + duration
        failed = any(s <= tick and (e is None or tick < e) for s, e in fail_spans)
        out.append({"run_id": f"scheduled__{_stamp(tick)}", "queued_at": tick, "start": tick,
                    "end": end if end <= t else None,
                    "state": ("failed" if failed else "success") if end <= t else "running"})
    return out


def _paused_at(dag: dict, t: float) -> bool:
    paused = dag["pauses"][0][1]
    for when, value in dag["pauses"]:
        if when > t:
            break
        paused = value
    return paused


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


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
