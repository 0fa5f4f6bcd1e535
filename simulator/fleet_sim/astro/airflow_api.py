"""Each simulated Deployment's Airflow REST API: v1 (Airflow 2) and v2 (Airflow 3).

The shapes, status codes, error bodies, paging rules and timestamp formats are those of
real Apache Airflow 2.10.5 and 3.0.6, recorded in tests/controlplane/recorded/airflow/
(tests/sim/test_sim_airflow_fidelity.py compares them):

* ``/health`` (v1), ``/monitor/health`` (v2) and ``/version`` need no token; everything
  else answers 401 without one (v1: an RFC 7807 body; v2: ``{"detail": "Not
  authenticated"}``) and 401 (v1) or 403 ``{"detail": "Invalid JWT token"}`` (v2) with a
  token the simulator does not accept.
* ``/importErrors``: v1 pages 100 by default and at most, ``limit=0`` meaning the default;
  v2 pages 50 by default, caps nothing, and ``limit=0`` is an empty page.
* Timestamps end in ``+00:00`` on v1 and in the health document; v2's other documents end
  in ``Z``.
* DAG runs: ``POST /dags/{id}/dagRuns`` (v2 requires the ``logical_date`` key, 422
  otherwise), 409 for a run id that exists, 404 for an unknown DAG or run.
* Lists, as the two OpenAPI descriptions give them (2.10.5 ``api_connexion/openapi/v1.yaml``,
  3.0.6 ``core_api/openapi/v2-rest-api-generated.yaml``): ``GET /dags`` and ``GET
  /dags/{id}/dagRuns``, where ``~`` as the id means every DAG, with ``end_date_gte/lte``,
  ``start_date_gte/lte``, ``state``, ``order_by`` (the sort keys each version allows; 400/422
  for another) and ``limit``/``offset`` (v1: at most 100, the default ``maximum_page_limit``;
  v2: 50 by default). Scheduled runs come from the DAG's scripted history (``dags``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from fleet_sim.astro import dags, views
from fleet_sim.astro.httpserver import Request, Response, json_response
from fleet_sim.astro.seeds import parse_time as seeds_time
from fleet_sim.astro.state import SimState
from fleet_sim.errors import InputError

DOCS = "https://airflow.apache.org/docs/apache-airflow/{version}/stable-rest-api-ref.html"
ERROR_KINDS = {400: "BadRequest", 401: "Unauthenticated", 403: "PermissionDenied",
               404: "NotFound", 405: "MethodNotAllowed", 409: "AlreadyExists"}
ERROR_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict"}
DAG_ROOT = "/usr/local/airflow/dags"


def handle(state: SimState, request: Request, dep_id: str, version: str, rest: list[str],
           token: str) -> Response:
    """Answer one Airflow API request; ``token`` is ``good``, ``bad`` or ``none``."""
    t = state.now()
    doc = state.visible(dep_id)
    af3 = version == "v2"
    if doc is None or version not in ("v1", "v2") or state.is_af3_running(doc, t) != af3:
        return _error(af3, 404, "Not Found")
    api = _Api(state, doc, af3, t)
    gate = state.airflow_gate(dep_id)
    if gate is not None:
        kind, value = gate
        if kind == "hang":
            return Response(504, b"upstream timed out", "text/plain", delay=value)
        status = int(value)
        html = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
        return Response(status, html.encode(), "text/html")
    public = rest == (["monitor", "health"] if af3 else ["health"]) or rest == ["version"]
    if public and request.method == "GET":
        if rest == ["version"]:
            return json_response(200, views.airflow_version(state, doc, t))
        return json_response(200, views.airflow_health(state, doc, t))
    if token != "good":
        return api.refused(token)
    try:
        return api.route(request, rest)
    except InputError as exc:
        return api.error(422 if af3 else 400, str(exc))


class _Api:
    """One request against one Deployment's Airflow."""

    def __init__(self, state: SimState, doc: dict, af3: bool, t: float):
        self.state, self.doc, self.af3, self.t = state, doc, af3, t

    @property
    def version(self) -> str:
        running = self.state.running_runtime(self.doc, self.t)
        return self.state.airflow_version_for(self.doc, running)

    def error(self, status: int, detail: object, title: str | None = None) -> Response:
        return _error(self.af3, status, detail, title, self.version)

    def refused(self, token: str) -> Response:
        if not self.af3:  # Airflow 2's API answers both alike, with no detail
            return _error(False, 401, None, version=self.version)
        if token == "none":
            return Response(401, json.dumps({"detail": "Not authenticated"}).encode(),
                            headers=[("www-authenticate", "Bearer")])
        return json_response(403, {"detail": "Invalid JWT token"})

    def route(self, request: Request, rest: list[str]) -> Response:
        method = request.method
        if rest and rest[0] == "importErrors" and method == "GET":
            return self.import_errors(request, rest[1:])
        if rest == ["dags"] and method == "GET":
            return self.dag_list(request)
        if len(rest) == 3 and rest[0] == "dags" and rest[2] == "dagRuns" and method == "GET":
            return self.run_list(request, rest[1])
        if len(rest) >= 2 and rest[0] == "dags":
            return self.dags(request, rest[1], rest[2:])
        if method not in ("GET", "POST", "PATCH"):
            return self.error(405, "Method Not Allowed")
        return self.error(404, "Not Found")

    # ------------------------------------------------------------------- import errors
    def import_errors(self, request: Request, rest: list[str]) -> Response:
        errors = self.state.visible_import_errors(self.doc, self.t)
        if rest:
            match = [e for e in errors if str(e["import_error_id"]) == rest[0]]
            if len(rest) > 1 or not match:
                return self.error(404, "The ImportError with import_error_id was not found",
                                  "Import error not found")
            return json_response(200, self.import_error(match[0]))
        default = 50 if self.af3 else 100
        limit = _int_param(request.query, "limit", default)
        if not self.af3:  # [api] maximum_page_limit; 0 means the fallback
            limit = min(limit or default, 100)
        offset = _int_param(request.query, "offset", 0)
        order = (request.query.get("order_by") or ["import_error_id"])[0]
        key, reverse = order.lstrip("-"), order.startswith("-")
        if key not in ("import_error_id", "timestamp", "filename"):
            return self.error(400, f"Ordering with '{key}' is disallowed or the attribute "
                                   "does not exist on the model")
        ordered = sorted(errors, key=lambda e: e[key], reverse=reverse)
        page = ordered[offset : offset + limit]
        return json_response(200, {"import_errors": [self.import_error(e) for e in page],
                                   "total_entries": len(errors)})

    def import_error(self, err: dict) -> dict:
        return views.import_error(err, self.af3)

    # ---------------------------------------------------------------------------- DAGs
    def dags(self, request: Request, dag_id: str, rest: list[str]) -> Response:
        dag = self.doc.get("dags", {}).get(dag_id)
        method = request.method
        if not rest and method in ("GET", "PATCH"):
            if dag is None:
                return self.error(404, f"Dag with id {dag_id} was not found" if self.af3 else
                                  f"The DAG with dag_id: {dag_id} was not found", "DAG not found")
            if method == "PATCH":
                self.patch_dag(request, dag)
            return json_response(200, self.dag_doc(dag_id, dag))
        if rest and rest[0] == "dagRuns":
            if dag is None:
                return self.error(404, f"DAG with dag_id: '{dag_id}' not found", "DAG not found")
            if len(rest) == 1 and method == "POST":
                return self.trigger(request, dag_id, dag)
            if len(rest) >= 2 and method == "GET":
                run = dag["runs"].get(rest[1])
                if run is None:
                    return self.scheduled_run(request, dag_id, dag, rest[1], rest[2:])
                if len(rest) == 2:
                    return json_response(200, self.run_doc(dag_id, dag, run))
                if rest[2:] == ["taskInstances"]:
                    return self.task_instances(request, dag_id, dag, run)
        return self.error(404, "Not Found")

    def dag_list(self, request: Request) -> Response:
        items = [self.dag_doc(k, v) for k, v in sorted(self.doc.get("dags", {}).items())]
        limit, offset = self.page(request)
        return json_response(200, {"dags": items[offset : offset + limit],
                                   "total_entries": len(items)})

    def run_list(self, request: Request, dag_id: str) -> Response:
        every = self.doc.get("dags", {})
        if dag_id != "~" and dag_id not in every:
            return self.error(404, f"DAG with dag_id: '{dag_id}' not found", "DAG not found")
        chosen = every if dag_id == "~" else {dag_id: every[dag_id]}
        docs = [doc for name, dag in sorted(chosen.items()) for doc in self.runs_of(name, dag)]
        query = request.query
        for key in ("start_date", "end_date"):
            for op, keep in (("gte", lambda a, b: a >= b), ("lte", lambda a, b: a <= b)):
                raw = (query.get(f"{key}_{op}") or [None])[0]
                if raw is None:
                    continue
                bound = _time_param(f"{key}_{op}", raw)
                docs = [d for d in docs if d[key] is not None
                        and keep(_parsed(d[key]), bound)]
        states = [v for raw in query.get("state", []) for v in raw.split(",") if v]
        if states:
            docs = [d for d in docs if d["state"] in states]
        allowed = (("id", "state", "dag_id", "run_id", "logical_date", "run_after",
                    "start_date", "end_date", "updated_at", "conf") if self.af3 else
                   ("id", "state", "dag_id", "execution_date", "dag_run_id", "start_date",
                    "end_date", "updated_at", "external_trigger", "conf"))
        order = (query.get("order_by") or ["id"])[0]
        key, reverse = order.lstrip("-"), order.startswith("-")
        if key not in allowed:
            return self.error(422 if self.af3 else 400,
                              f"Ordering with '{key}' is disallowed or the attribute does not "
                              "exist on the model")
        field = {"id": "queued_at", "run_id": "dag_run_id", "updated_at": "end_date"}.get(key,
                                                                                       key)

        def sort_key(doc: dict) -> tuple:
            value = doc.get(field)
            return (value is None, str(value) if value is not None else "")
        docs.sort(key=sort_key, reverse=reverse)
        limit, offset = self.page(request)
        page = [{k: v for k, v in d.items() if k != "queued_at"} for d in
                docs[offset : offset + limit]]
        return json_response(200, {"dag_runs": page, "total_entries": len(docs)})

    def page(self, request: Request) -> tuple[int, int]:
        default = 50 if self.af3 else 100
        limit = _int_param(request.query, "limit", default)
        if not self.af3:  # [api] maximum_page_limit; 0 means the fallback
            limit = min(limit or default, 100)
        return limit, _int_param(request.query, "offset", 0)

    def runs_of(self, dag_id: str, dag: dict) -> list[dict]:
        """Every run of one DAG, triggered and scheduled, as the API shows them (with the
        queue time, for ordering by id)."""
        out = [{**self.run_doc(dag_id, dag, run), "queued_at": run["queued_at"]}
               for run in dag["runs"].values()]
        scale = float(self.state.config["time_scale"])
        for run in dags.scheduled_runs(dag, self.t, scale, self.state.scaled("dag_run_seconds"),
                                       self.state.run_fail_spans(self.doc)):
            out.append({**self.scheduled_doc(dag_id, dag, run), "queued_at": run["queued_at"]})
        return out

    def scheduled_doc(self, dag_id: str, dag: dict, run: dict) -> dict:
        tick = self.ts(run["queued_at"])
        common = {
            "conf": {}, "dag_id": dag_id, "dag_run_id": run["run_id"],
            "end_date": self.ts(run["end"]), "last_scheduling_decision":
            self.ts(run["end"] or run["start"]), "note": None, "run_type": "scheduled",
            "start_date": self.ts(run["start"]), "state": run["state"],
        }
        if self.af3:
            return {**common, "bundle_version": None, "dag_versions": [self.dag_version(
                dag_id, dag)], "data_interval_end": tick, "data_interval_start": tick,
                "logical_date": tick, "queued_at": tick, "run_after": tick,
                "triggered_by": "timetable"}
        return {**common, "data_interval_end": tick, "data_interval_start": tick,
                "execution_date": tick, "external_trigger": False, "logical_date": tick}

    def patch_dag(self, request: Request, dag: dict) -> None:
        body = request.json()
        mask = (request.query.get("update_mask") or ["is_paused"])[0]
        if mask != "is_paused" or not isinstance(body, dict) \
                or not isinstance(body.get("is_paused"), bool):
            raise InputError("only is_paused can be updated, with a boolean")
        dags.set_paused(dag, body["is_paused"], self.t)
        self.state.save(self.doc)

    def trigger(self, request: Request, dag_id: str, dag: dict) -> Response:
        body = request.json()
        body = body if isinstance(body, dict) else {}
        if self.af3 and "logical_date" not in body:
            return json_response(422, {"detail": [{"type": "missing",
                                                   "loc": ["body", "logical_date"],
                                                   "msg": "Field required", "input": body}]})
        run_id = body.get("dag_run_id") or dags.new_run_id(self.t, self.af3)
        if run_id in dag["runs"]:
            return self.conflict(dag_id, run_id)
        conf = body.get("conf") if isinstance(body.get("conf"), dict) else {}
        faults = self.state.faults.get(self.doc["id"], {})
        fate = ("stuck" if faults.get("dag_run_stuck") else
                "failed" if faults.get("dag_run_fails") else "success")
        run = dags.trigger(dag, run_id, conf, self.t, fate)
        self.state.save(self.doc)
        return json_response(200, self.run_doc(dag_id, dag, run))

    def conflict(self, dag_id: str, run_id: str) -> Response:
        if not self.af3:
            return self.error(409, f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' "
                                   "already exists", "Conflict")
        return json_response(409, {"detail": {
            "reason": "Unique constraint violation",
            "statement": "INSERT INTO dag_run (dag_id, run_id, ...) VALUES (?, ?, ...)",
            "orig_error": "UNIQUE constraint failed: dag_run.dag_id, dag_run.run_id",
            "message": "Serious error when handling your request. Check logs for more details",
        }})

    def run_not_found(self, dag_id: str, run_id: str) -> Response:
        if self.af3:
            return self.error(404, f"The DagRun with dag_id: `{dag_id}` and run_id: "
                                   f"`{run_id}` was not found")
        return self.error(404, f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' "
                               "not found", "DAGRun not found")

    def scheduled_run(self, request: Request, dag_id: str, dag: dict, run_id: str,
                      rest: list[str]) -> Response:
        """A run of the DAG's scripted history, or 404 as for any unknown run."""
        scale = float(self.state.config["time_scale"])
        found = [r for r in dags.scheduled_runs(dag, self.t, scale,
                                                self.state.scaled("dag_run_seconds"),
                                                self.state.run_fail_spans(self.doc))
                 if r["run_id"] == run_id]
        if not found or rest not in ([], ["taskInstances"]):
            return self.run_not_found(dag_id, run_id)
        run = found[0]
        if not rest:
            return json_response(200, self.scheduled_doc(dag_id, dag, run))
        return self.task_page(request, dag_id, dag, run, run["state"], run["start"],
                              run["end"])

    def task_instances(self, request: Request, dag_id: str, dag: dict, run: dict) -> Response:
        state, start, end = self.run_times(dag, run)
        return self.task_page(request, dag_id, dag, run, state, start, end)

    def task_page(self, request: Request, dag_id: str, dag: dict, run: dict, state: str,
                  start: float | None, end: float | None) -> Response:
        items = []
        for i, (task_id, ti_state, tries) in enumerate(dags.task_states(dag, state)):
            ended = end if ti_state in ("success", "failed") else None
            items.append(self.task_doc(dag_id, dag, run, task_id, ti_state, tries, i,
                                       start if tries else None, ended))
        limit = _int_param(request.query, "limit", 50 if self.af3 else 100)
        offset = _int_param(request.query, "offset", 0)
        return json_response(200, {"task_instances": items[offset : offset + limit],
                                   "total_entries": len(items)})

    # ------------------------------------------------------------------------ shapes
    def ts(self, t: float | None) -> str | None:
        if t is None:
            return None
        text = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
        return text.replace("+00:00", "Z") if self.af3 else text

    def run_times(self, dag: dict, run: dict) -> tuple[str, float | None, float | None]:
        scale = float(self.state.config["time_scale"])
        return dags.run_times(dag, run, self.t, dags.START_DELAY * scale,
                              self.state.scaled("dag_run_seconds"))

    def dag_doc(self, dag_id: str, dag: dict) -> dict:
        fileloc = f"{DAG_ROOT}/{dag_id}.py"
        common = {
            "dag_display_name": dag_id, "dag_id": dag_id, "description": None,
            "file_token": _token(fileloc), "fileloc": fileloc, "has_import_errors": False,
            "has_task_concurrency_limits": False, "is_paused": dags.is_paused(dag, self.t),
            "last_expired": None, "last_parsed_time": self.ts(dag["created_at"]),
            "max_active_runs": 16, "max_active_tasks": 16,
            "max_consecutive_failed_dag_runs": 0, "next_dagrun_data_interval_end": None,
            "next_dagrun_data_interval_start": None, "owners": ["airflow"], "tags": [],
            "timetable_description": "Never, external triggers only",
        }
        if self.af3:
            return {**common, "bundle_name": "dags-folder", "bundle_version": None,
                    "is_stale": False, "next_dagrun_logical_date": None,
                    "next_dagrun_run_after": None, "relative_fileloc": f"{dag_id}.py",
                    "timetable_summary": None}
        return {**common, "default_view": "grid", "is_active": True, "is_subdag": False,
                "last_pickled": None, "next_dagrun": None, "next_dagrun_create_after": None,
                "pickle_id": None, "root_dag_id": None, "schedule_interval": None,
                "scheduler_lock": None}

    def run_doc(self, dag_id: str, dag: dict, run: dict) -> dict:
        state, start, end = self.run_times(dag, run)
        queued = self.ts(run["queued_at"])
        common = {
            "conf": run["conf"], "dag_id": dag_id, "dag_run_id": run["run_id"],
            "end_date": self.ts(end), "last_scheduling_decision": self.ts(end or start),
            "note": None, "run_type": "manual", "start_date": self.ts(start), "state": state,
        }
        if self.af3:
            return {**common, "bundle_version": None, "dag_versions": [self.dag_version(
                dag_id, dag)], "data_interval_end": None, "data_interval_start": None,
                "logical_date": None, "queued_at": queued, "run_after": queued,
                "triggered_by": "rest_api"}
        return {**common, "data_interval_end": queued, "data_interval_start": queued,
                "execution_date": queued, "external_trigger": True, "logical_date": queued}

    def dag_version(self, dag_id: str, dag: dict) -> dict:
        return {"bundle_name": "dags-folder", "bundle_url": None, "bundle_version": None,
                "created_at": self.ts(dag["created_at"]), "dag_id": dag_id,
                "id": _uuid(f"{self.doc['id']}/{dag_id}"), "version_number": 1}

    def task_doc(self, dag_id: str, dag: dict, run: dict, task_id: str, state: str | None,
                 tries: int, index: int, start: float | None, end: float | None) -> dict:
        queued = self.ts(run["queued_at"])
        common = {
            "dag_id": dag_id, "dag_run_id": run["run_id"],
            "duration": round(end - start, 6) if start is not None and end is not None else None,
            "end_date": self.ts(end), "executor": None, "executor_config": "{}",
            "hostname": "" if start is None else f"{self.doc['namespace']}-worker-0",
            "map_index": -1, "max_tries": 0, "note": None,
            "operator": "_PythonDecoratedOperator", "pid": None if start is None else 100 + index,
            "pool": "default_pool", "pool_slots": 1, "priority_weight": 1, "queue": "default",
            "queued_when": None if start is None else self.ts(start),
            "rendered_map_index": None, "start_date": self.ts(start), "state": state,
            "task_display_name": task_id, "task_id": task_id, "trigger": None,
            "triggerer_job": None, "try_number": tries, "unixname": "astro",
        }
        if self.af3:
            return {**common, "dag_version": self.dag_version(dag_id, dag),
                    "id": _uuid(f"{run['run_id']}/{task_id}"), "logical_date": None,
                    "rendered_fields": {}, "run_after": queued,
                    "scheduled_when": None if start is None else self.ts(start)}
        return {**common, "execution_date": queued, "rendered_fields": {
            "op_args": [], "op_kwargs": {}, "templates_dict": None}, "sla_miss": None}


def _error(af3: bool, status: int, detail: object, title: str | None = None,
           version: str = "2.10.5") -> Response:
    if af3:  # FastAPI
        return json_response(status, {"detail": detail})
    kind = ERROR_KINDS.get(status, "Unknown")
    body = {"detail": detail, "status": status,
            "title": title or ERROR_TITLES.get(status, str(detail)),
            "type": f"{DOCS.format(version=version)}#section/Errors/{kind}"}
    return Response(status, json.dumps(body).encode(), "application/problem+json")


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name)
    if not raw:
        return default
    if not raw[0].isdigit():
        raise InputError(f"Invalid query parameter values: field {name} must be an integer "
                         ">= 0")
    return int(raw[0])


def _time_param(name: str, raw: str) -> float:
    stamp = seeds_time(raw)
    if stamp is None:
        raise InputError(f"Invalid query parameter values: field {name} must be a date-time")
    return stamp


def _parsed(text: str) -> float:
    stamp = seeds_time(text)
    assert stamp is not None
    return stamp


def _token(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _uuid(text: str) -> str:
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-8{h[17:20]}-{h[20:32]}"
