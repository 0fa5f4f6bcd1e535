"""A Deployment's run history from its Airflow REST API, for the soak analysis.

The requests, the same on Airflow 2 (``/api/v1``) and 3 (``/api/v2``), as their OpenAPI
descriptions give them (2.10.5: ``airflow/api_connexion/openapi/v1.yaml``; 3.0.6:
``airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml``):

* ``GET /dags/~/dagRuns`` — both say "`~` as the dag_id to retrieve DAG runs for all DAGs" —
  with ``end_date_gte`` / ``end_date_lte`` (a window by the time a run *ended*: Airflow 3's
  manual runs have no logical date, so ``execution_date``/``logical_date`` cannot window
  them), ``order_by=-end_date`` (an allowed sort key on both), ``limit`` and ``offset``.
  Newest first, so when a window holds more runs than the page budget allows, what is
  read is the newest end of it, and the window is shortened to what was read.
* ``GET /dags`` (``limit``/``offset``): each DAG's ``is_paused`` and ``has_import_errors``.
  Airflow 2 lists only active DAGs by default (``only_active``), Airflow 3 leaves out stale
  ones (``exclude_stale``): a DAG whose file is gone is missing from the list.
* ``GET /dags/{dag_id}/dagRuns/{run_id}/taskInstances``: the failed tasks of a failed run,
  named in the verdict (at most ``MAX_TASK_LOOKUPS`` runs per poll).

Pages are capped by the server (``[api] maximum_page_limit``, 100 by default on Airflow 2;
Airflow 3 caps at its own setting): page with ``offset`` until ``total_entries``. A poll
makes at most ``max_pages`` run requests and ``max_pages`` DAG-list requests, and counts
every request it made (``HistoryRead.requests``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from upgrade.controlplane.airflow import (
    PAGE,
    AirflowAPI,
    AirflowEndpoint,
    parse_task_instances,
)
from upgrade.controlplane.deployment import parse_timestamp
from upgrade.errors import AirflowResponseError
from upgrade.model.analysis import DagState, RunFact

DEFAULT_MAX_PAGES = 10  # run pages per poll: 1,000 runs, the newest of the window
MAX_TASK_LOOKUPS = 3  # failed runs whose task instances a poll reads


@dataclass(frozen=True)
class RunsRead:
    """The finished runs of one window, as far as the page budget reached."""

    runs: tuple[RunFact, ...]
    since: datetime  # the window's start: later than asked when the budget ran out
    until: datetime
    requests: int
    truncated: bool = False  # more runs than the budget: ``since`` moved to the oldest read
    last_failed: Mapping[str, str] = field(default_factory=dict)  # dag id -> newest failed run


def read_runs(api: AirflowAPI, endpoint: AirflowEndpoint, since: datetime, until: datetime,
              *, max_pages: int = DEFAULT_MAX_PAGES, page_size: int = PAGE) -> RunsRead:
    """Every DAG run that ended in ``[since, until]``, newest first, in at most
    ``max_pages`` requests."""
    params = {"end_date_gte": _iso(since), "end_date_lte": _iso(until),
              "order_by": "-end_date"}
    docs, requests, total = _pages(api, endpoint, "/dags/~/dagRuns", "dag_runs", params,
                                   max_pages, page_size)
    runs = tuple(_run(d, endpoint) for d in docs)
    truncated = len(docs) < total
    start = since
    if truncated and runs:
        # The newest runs were read; the window is what they cover, so rates stay honest.
        oldest = min((r.end for r in runs if r.end is not None), default=since)
        start = max(since, oldest)
        runs = tuple(r for r in runs if r.end is None or r.end >= start)
    last_failed: dict[str, str] = {}
    for doc, run in zip(docs, runs, strict=False):
        if run.state == "failed":
            last_failed.setdefault(run.dag_id, str(doc["dag_run_id"]))
    return RunsRead(runs, start, until, requests, truncated, last_failed)


def read_dags(api: AirflowAPI, endpoint: AirflowEndpoint, *,
              max_pages: int = DEFAULT_MAX_PAGES, page_size: int = PAGE
              ) -> tuple[dict[str, DagState] | None, int]:
    """Each listed DAG's state, and the requests made; None when the list did not fit in
    ``max_pages`` (then no DAG can be called missing)."""
    docs, requests, total = _pages(api, endpoint, "/dags", "dags", {}, max_pages, page_size)
    if len(docs) < total:
        return None, requests
    out = {}
    for doc in docs:
        if not isinstance(doc.get("dag_id"), str) or not isinstance(doc.get("is_paused"), bool):
            raise _shape(endpoint, "/dags", f"DAG without dag_id or is_paused: {doc!r}")
        out[doc["dag_id"]] = DagState(doc["is_paused"], bool(doc.get("has_import_errors")))
    return out, requests


def failed_tasks(api: AirflowAPI, endpoint: AirflowEndpoint, dag_id: str,
                 run_id: str) -> list[str]:
    """The task ids that failed in one run (one request: a run has fewer than 100 tasks
    in practice, and the first page is enough to name them)."""
    path = (f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances")
    doc = api.request_json(endpoint, path, params={"limit": PAGE, "offset": 0})
    try:
        items, _ = parse_task_instances(doc)
    except ValueError as exc:
        raise _shape(endpoint, path, str(exc)) from None
    return [t.task_id for t in items if t.state == "failed"]


def _pages(api: AirflowAPI, endpoint: AirflowEndpoint, path: str, key: str,
           params: Mapping[str, Any], max_pages: int, page_size: int
           ) -> tuple[list[Mapping[str, Any]], int, int]:
    """The entries of a paged list, as many pages as allowed: (entries, requests, total)."""
    found: list[Mapping[str, Any]] = []
    total = 0
    requests = 0
    while requests < max_pages:
        doc = api.request_json(endpoint, path,
                               params={**params, "limit": page_size, "offset": len(found)})
        requests += 1
        if (not isinstance(doc, Mapping) or not isinstance(doc.get(key), list)
                or not isinstance(doc.get("total_entries"), int)):
            raise _shape(endpoint, path, f"page has no '{key}' list and integer "
                                         "'total_entries'")
        items = [i for i in doc[key] if isinstance(i, Mapping)]
        found.extend(items)
        total = doc["total_entries"]
        if not items or len(found) >= total:
            break
    return found, requests, max(total, len(found))


def _run(doc: Mapping[str, Any], endpoint: AirflowEndpoint) -> RunFact:
    for key in ("dag_id", "dag_run_id", "state"):
        if not isinstance(doc.get(key), str):
            raise _shape(endpoint, "/dags/~/dagRuns", f"DAG run has no '{key}' string")
    return RunFact(doc["dag_id"], doc["state"], parse_timestamp(doc.get("start_date")),
                   parse_timestamp(doc.get("end_date")))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _segment(text: str) -> str:
    return quote(text, safe="")


def _shape(endpoint: AirflowEndpoint, path: str, why: str) -> AirflowResponseError:
    url = endpoint.base + path
    return AirflowResponseError(
        f"Deployment {endpoint.deployment_id}: GET {url} answered with a body that is not "
        f"the documented shape ({why}).", deployment_id=endpoint.deployment_id, url=url,
        status_code=200)

