"""The canary DAG run: trigger a named DAG after the deploy and wait for its run to succeed.

The ``dag_run`` check's probe looks here once per poll. The first look triggers a run
with an id of our own (``astro_fleet_upgrade__...``); later looks read that run until it
succeeds (pass), fails (fail at once, naming the failed tasks and the log of the first),
or the check's budget ends (fail, naming the run's state and where to see it).

A paused DAG's run would stay queued forever: without ``unpause: true`` the check fails
at once and says so; with it, the DAG is unpaused for the run and paused again when the
check ends, however it ends (:func:`restore`). The state kept between looks is the
check's ``Attempt.memory``.

Measured on real Airflow: 2.10.5 triggers on ``POST /api/v1/dags/{id}/dagRuns`` without a
``logical_date``; 3.0.6 answers 422 ("Field required") unless the body has the key
(``null``: now), and 409 to a run id that exists (2.10.5 too).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from upgrade.controlplane.airflow import AirflowAPI, AirflowEndpoint, DagRun
from upgrade.errors import AirflowAPIError, AirflowNotFound
from upgrade.run.verify.look import Look

RUN_ID_PREFIX = "astro_fleet_upgrade__"
MAX_NAMED = 5  # failed tasks named in one message


def new_run_id() -> str:
    """A run id Airflow accepts and nobody else uses: ours, the time, a random tail."""
    return f"{RUN_ID_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"


def look(api: AirflowAPI, endpoint: AirflowEndpoint, settings: Mapping[str, Any],
         memory: dict[str, Any]) -> Look:
    """One look: trigger the run (first time), else read how it is doing."""
    dag_id = settings["dag_id"]
    memory["endpoint"] = endpoint
    if not memory.get("triggered"):
        return _trigger(api, endpoint, dag_id, settings, memory)
    run = api.dag_run(endpoint, dag_id, memory["run_id"])
    return _judge(api, endpoint, run, memory)


def _trigger(api: AirflowAPI, endpoint: AirflowEndpoint, dag_id: str,
             settings: Mapping[str, Any], memory: dict[str, Any]) -> Look:
    try:
        dag = api.dag(endpoint, dag_id)
    except AirflowNotFound:
        # Right after a deploy the new image's DAGs may not be parsed yet.
        return Look("wait", f"Airflow does not know DAG {dag_id} (yet); check the dag_id, "
                            "and that the DAG file imports without errors.")
    if dag.is_paused:
        if not settings.get("unpause"):
            return Look("fail", f"DAG {dag_id} is paused, so a run of it would wait forever. "
                                "Unpause it in Airflow, or set unpause: true on the dag_run "
                                "check (it is paused again when the check ends).", final=True)
        # Noted before the call: a call whose answer is lost must still be undone.
        memory["repause"] = dag_id
        try:
            api.set_paused(endpoint, dag_id, False)
        except AirflowAPIError as exc:
            if exc.status_code is not None and exc.status_code < 500:
                memory.pop("repause")  # refused (e.g. a read-only token): nothing changed
            raise
    # The same id on every try: a trigger whose answer was lost answers 409 the next
    # time, and the client then returns the run it did create.
    run_id = memory.setdefault("run_id", new_run_id())
    run = api.trigger_dag_run(endpoint, dag_id, run_id, settings.get("conf") or {})
    memory["triggered"] = time.monotonic()
    return _judge(api, endpoint, run, memory)


def _judge(api: AirflowAPI, endpoint: AirflowEndpoint, run: DagRun,
           memory: dict[str, Any]) -> Look:
    what = f"DAG {run.dag_id} run {run.run_id}"
    if run.state == "success":
        took = time.monotonic() - memory["triggered"]
        return Look("pass", f"{what} succeeded ({took:.0f} s after it was triggered).")
    if run.state == "failed":
        return Look("fail", _failure(api, endpoint, run), final=True)
    where = endpoint.run_url(run.dag_id, run.run_id)
    return Look("wait", f"{what} is {run.state} (see {where}).")


def _failure(api: AirflowAPI, endpoint: AirflowEndpoint, run: DagRun) -> str:
    what = f"DAG {run.dag_id} run {run.run_id} failed"
    try:
        tasks = api.task_instances(endpoint, run.dag_id, run.run_id)
    except AirflowAPIError as exc:
        return (f"{what} (its tasks could not be read: {_first_line(str(exc))}); see "
                f"{endpoint.run_url(run.dag_id, run.run_id)}.")
    failed = [t for t in tasks if t.state == "failed"]
    if not failed:
        return (f"{what} with no failed task (the run itself was failed, e.g. timed out); see "
                f"{endpoint.run_url(run.dag_id, run.run_id)}.")
    names = [t.task_id if t.map_index < 0 else f"{t.task_id}[{t.map_index}]"
             for t in failed[:MAX_NAMED]]
    more = f" and {len(failed) - MAX_NAMED} more" if len(failed) > MAX_NAMED else ""
    first = failed[0]
    log = endpoint.task_log_url(run.dag_id, run.run_id, first.task_id,
                                try_number=first.try_number or None, map_index=first.map_index)
    return f"{what}: failed task(s) {', '.join(names)}{more}; log of {first.task_id}: {log}."


def restore(api: AirflowAPI, memory: Mapping[str, Any]) -> Look | None:
    """Pause the DAG again if the check unpaused it: a pass note, a fail, or None."""
    dag_id = memory.get("repause")
    endpoint = memory.get("endpoint")
    if not dag_id or endpoint is None:
        return None
    try:
        api.set_paused(endpoint, dag_id, True)
    except AirflowAPIError as exc:
        return Look("fail", f"DAG {dag_id} was unpaused for the canary run and could not be "
                            f"paused again ({_first_line(str(exc))}); pause it by hand.")
    return Look("pass", f"DAG {dag_id} paused again, as it was.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
