"""A Deployment's Airflow REST API: health, version, DAG import errors, and canary DAG runs.

Airflow 2 serves ``/api/v1`` and Airflow 3 ``/api/v2`` (FastAPI; ``/api/v1`` is gone). Which
one a Deployment speaks is asked, as astro-cli asks it (``FetchAirflowVersion``,
cmd/api/airflow.go): ``GET /api/v2/version``, then ``/api/v1/version``, at the root of the
URL Astro gives (``webServerAirflowApiUrl``: no scheme, a ``/api/vN`` suffix or none),
never trusting the suffix; the answer is kept per root and Airflow line (``probe``). One
``AirflowAPI`` holds one pooled ``httpx.Client`` and may be used from many worker threads
at once.

What real Airflow 2.10.5 and 3.0.6 answer (recorded in tests/controlplane/recorded/airflow):
``/health`` and ``/version`` need no auth; every other endpoint answers 401 without a token
(2.x: an RFC 7807 body; 3.x: ``{"detail": "Not authenticated"}``) and 401 (2.x) or 403
(3.x, ``{"detail": "Invalid JWT token"}``) with a bad one. Health timestamps end in
``+00:00`` on both. Import-error file names are absolute.

Errors::

    UpgradeError
    └── AirflowAPIError            any other unexpected status (names the Deployment)
        ├── AirflowAuthError       401/403: no token was sent, or it was refused (never retried)
        ├── AirflowNotFound        404: wrong URL or API version
        ├── AirflowResponseError   a 2xx body that is not the documented shape
        └── AirflowUnavailable     5xx or connection errors, still failing after retries
            └── AirflowTimeout     the API did not answer in time, after retries
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from upgrade.controlplane.deployment import parse_timestamp
from upgrade.controlplane.http import Retry, RetryPolicy, read_with_retries, retry_after
from upgrade.errors import (
    AirflowAPIError,
    AirflowAuthError,
    AirflowNotFound,
    AirflowResponseError,
    AirflowTimeout,
    AirflowUnavailable,
)
from upgrade.model.redact import Redactor

log = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "ASTRO_API_TOKEN"
# Airflow 2 caps a page at 100 ([api] maximum_page_limit); 3.0 defaults to 50 and caps none.
PAGE = 100
# A runaway server that keeps reporting more entries must not keep us paging forever.
MAX_PAGES = 1000

# ------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class AirflowEndpoint:
    """Where one Deployment's Airflow API lives, and which major version it speaks."""

    deployment_id: str
    root: str  # scheme://host/path, without /api/vN
    api_version: int  # 1 (Airflow 2) or 2 (Airflow 3)

    @classmethod
    def from_api_url(
        cls, url: str, *, deployment_id: str, scheme: str = "https"
    ) -> AirflowEndpoint:
        """Parse an Airflow API URL that ends ``/api/v1|v2`` (schemeless or not), trusting
        the suffix; a Deployment's is probed instead (``AirflowAPI.probe``)."""
        root = cls.root_of(url, deployment_id=deployment_id, scheme=scheme)
        match = re.search(r"/api/v(?P<v>[12])/?(?:[?#].*)?$", (url or "").strip())
        if not match:
            raise AirflowAPIError(
                f"Deployment {deployment_id}: cannot use Airflow API URL {url!r}; it does not "
                "end in /api/v1 (Airflow 2) or /api/v2 (Airflow 3).",
                deployment_id=deployment_id, url=url,
            )
        return cls(deployment_id, root, int(match.group("v")))

    @staticmethod
    def root_of(url: str, *, deployment_id: str, scheme: str = "https") -> str:
        """The Airflow root of an API URL: scheme added when missing (``scheme``), query and
        a ``/api/v1`` or ``/api/v2`` suffix dropped (astro-cli's airflowHostRoot)."""
        text = (url or "").strip()
        if "://" not in text:
            text = f"{scheme}://{text}"
        text = re.split(r"[?#]", text, maxsplit=1)[0].rstrip("/")
        text = re.sub(r"/api/v[12]$", "", text)
        if not re.fullmatch(r"https?://[^/\s]+(?:/[^\s]*)?", text):
            raise AirflowAPIError(
                f"Deployment {deployment_id}: cannot use Airflow API URL {url!r}; Astro gives "
                "a host and path, over http(s).",
                deployment_id=deployment_id, url=url,
            )
        return text

    @property
    def base(self) -> str:
        """The API base URL, e.g. ``https://host/d/abc/api/v2``."""
        return f"{self.root}/api/v{self.api_version}"

    @property
    def health_path(self) -> str:
        """``/health`` on Airflow 2, ``/monitor/health`` on Airflow 3."""
        return "/health" if self.api_version == 1 else "/monitor/health"

    def run_url(self, dag_id: str, run_id: str) -> str:
        """Where a person sees a DAG run in the Airflow UI."""
        if self.api_version == 1:
            return f"{self.root}/dags/{_segment(dag_id)}/grid?{urlencode({'dag_run_id': run_id})}"
        return f"{self.root}/dags/{_segment(dag_id)}/runs/{_segment(run_id)}"

    def task_log_url(self, dag_id: str, run_id: str, task_id: str, *,
                     try_number: int | None = None, map_index: int = -1) -> str:
        """Where a person reads a task instance's log in the Airflow UI (served at the root)."""
        if self.api_version == 1:  # Airflow 2's grid view, logs tab
            query: dict[str, Any] = {"dag_run_id": run_id, "task_id": task_id, "tab": "logs"}
            if map_index >= 0:
                query["map_index"] = map_index
            return f"{self.root}/dags/{_segment(dag_id)}/grid?{urlencode(query)}"
        url = (f"{self.root}/dags/{_segment(dag_id)}/runs/{_segment(run_id)}"
               f"/tasks/{_segment(task_id)}")
        if map_index >= 0:
            url += f"/mapped/{map_index}"
        return url + (f"?try_number={try_number}" if try_number else "")


def _segment(text: str) -> str:
    """One path segment, escaped (run ids hold ``:`` and ``+``)."""
    return quote(text, safe="")


@dataclass(frozen=True)
class ComponentHealth:
    """One component of ``/health``: ``healthy``, ``unhealthy`` or None, and its heartbeat."""

    status: str | None
    latest_heartbeat: datetime | None

    def age(self, now: datetime | None = None) -> timedelta | None:
        """How long ago the last heartbeat was, or None without one."""
        if self.latest_heartbeat is None:
            return None
        return (now or datetime.now(UTC)) - self.latest_heartbeat


@dataclass(frozen=True)
class Health:
    """The Airflow health document, typed."""

    metadatabase: str | None
    scheduler: ComponentHealth
    triggerer: ComponentHealth
    dag_processor: ComponentHealth
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def healthy(self) -> bool:
        """Database and scheduler healthy; triggerer and DAG processor not unhealthy."""
        return (
            self.metadatabase == "healthy"
            and self.scheduler.status == "healthy"
            and self.triggerer.status in ("healthy", None)
            and self.dag_processor.status in ("healthy", None)
        )

    def components(self) -> dict[str, ComponentHealth]:
        """The heart-beating components by name."""
        return {
            "scheduler": self.scheduler,
            "triggerer": self.triggerer,
            "dag_processor": self.dag_processor,
        }

    def stale(self, max_age: timedelta, now: datetime | None = None) -> list[str]:
        """Components whose heartbeat is older than ``max_age`` (the scheduler also if absent)."""
        now = now or datetime.now(UTC)
        out = []
        for name, comp in self.components().items():
            age = comp.age(now)
            if (age is None and name == "scheduler") or (age is not None and age > max_age):
                out.append(name)
        return out


@dataclass(frozen=True)
class AirflowVersion:
    """``/version``: ``raw`` keeps Astro's ``+astro.N`` local tag, ``version`` drops it."""

    raw: str
    git_version: str | None = None

    @property
    def version(self) -> str:
        """The plain Airflow version, e.g. ``2.10.5`` for ``2.10.5+astro.1``."""
        return self.raw.split("+", 1)[0]

    @property
    def local(self) -> str | None:
        """The local build tag, e.g. ``astro.1``, or None."""
        return self.raw.split("+", 1)[1] if "+" in self.raw else None


@dataclass(frozen=True)
class DagImportError:
    """One DAG file that failed to import."""

    import_error_id: int
    filename: str
    stack_trace: str
    timestamp: datetime | None
    bundle_name: str | None = None


@dataclass(frozen=True)
class Dag:
    """A DAG as the API reports it: what the canary check needs."""

    dag_id: str
    is_paused: bool


@dataclass(frozen=True)
class DagRun:
    """One DAG run: ``state`` is queued, running, success or failed."""

    dag_id: str
    run_id: str
    state: str
    start_date: datetime | None = None
    end_date: datetime | None = None


@dataclass(frozen=True)
class TaskInstance:
    """One task instance of a run (``map_index`` -1 unless mapped)."""

    task_id: str
    state: str | None
    try_number: int = 0
    map_index: int = -1


def parse_health(doc: Any) -> Health:
    """Type an Airflow 2 or 3 health document; unknown keys are ignored."""
    if not isinstance(doc, Mapping):
        raise ValueError("health is not a JSON object")

    def comp(name: str) -> ComponentHealth:
        part = doc.get(name) or {}
        if not isinstance(part, Mapping):
            raise ValueError(f"'{name}' is not an object")
        beat = part.get(f"latest_{name}_heartbeat")
        if beat not in (None, "") and parse_timestamp(beat) is None:
            raise ValueError(f"'{name}' heartbeat {beat!r} is not a timestamp")
        return ComponentHealth(part.get("status"), parse_timestamp(beat))

    meta = doc.get("metadatabase") or {}
    if not isinstance(meta, Mapping):
        raise ValueError("'metadatabase' is not an object")
    return Health(
        metadatabase=meta.get("status"),
        scheduler=comp("scheduler"),
        triggerer=comp("triggerer"),
        dag_processor=comp("dag_processor"),
        raw=doc,
    )


def parse_version(doc: Any) -> AirflowVersion:
    """Type a ``/version`` document."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("version"), str):
        raise ValueError("version document has no 'version' string")
    return AirflowVersion(raw=doc["version"], git_version=doc.get("git_version"))


def parse_import_errors(doc: Any) -> tuple[list[DagImportError], int]:
    """Type one page of ``/importErrors``: the entries and ``total_entries``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("import_errors"), list):
        raise ValueError("page has no 'import_errors' list")
    total = doc.get("total_entries")
    if not isinstance(total, int):
        raise ValueError("page has no integer 'total_entries'")
    items = []
    for item in doc["import_errors"]:
        if not isinstance(item, Mapping) or "import_error_id" not in item:
            raise ValueError(f"entry without 'import_error_id': {item!r}")
        items.append(
            DagImportError(
                import_error_id=int(item["import_error_id"]),
                filename=str(item.get("filename") or ""),
                stack_trace=str(item.get("stack_trace") or ""),
                timestamp=parse_timestamp(item.get("timestamp")),
                bundle_name=item.get("bundle_name"),
            )
        )
    return items, total


def parse_dag(doc: Any) -> Dag:
    """Type a DAG document (``GET``/``PATCH /dags/{dag_id}``)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("dag_id"), str):
        raise ValueError("DAG document has no 'dag_id' string")
    paused = doc.get("is_paused")
    if not isinstance(paused, bool):
        raise ValueError("DAG document has no boolean 'is_paused'")
    return Dag(doc["dag_id"], paused)


def parse_dag_run(doc: Any) -> DagRun:
    """Type a DAG run document (v1 and v2 both name it ``dag_run_id``)."""
    if not isinstance(doc, Mapping):
        raise ValueError("DAG run is not a JSON object")
    for key in ("dag_id", "dag_run_id", "state"):
        if not isinstance(doc.get(key), str):
            raise ValueError(f"DAG run has no '{key}' string")
    return DagRun(doc["dag_id"], doc["dag_run_id"], doc["state"],
                  parse_timestamp(doc.get("start_date")), parse_timestamp(doc.get("end_date")))


def parse_task_instances(doc: Any) -> tuple[list[TaskInstance], int]:
    """Type one page of ``.../taskInstances``: the entries and ``total_entries``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("task_instances"), list):
        raise ValueError("page has no 'task_instances' list")
    total = doc.get("total_entries")
    if not isinstance(total, int):
        raise ValueError("page has no integer 'total_entries'")
    out = []
    for item in doc["task_instances"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("task_id"), str):
            raise ValueError(f"task instance without 'task_id': {item!r}")
        index = item.get("map_index")
        out.append(TaskInstance(item["task_id"], item.get("state"),
                                int(item.get("try_number") or 0),
                                index if isinstance(index, int) else -1))
    return out, total


# ---------------------------------------------------------------------------- client


class AirflowAPI:
    """A pooled, retrying client for Airflow APIs of many Deployments (thread-safe)."""

    def __init__(
        self,
        *,
        token_env: str = DEFAULT_TOKEN_ENV,
        env: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        source = env if env is not None else os.environ
        self.token_env = token_env
        self._token = source.get(token_env) or None
        self._redact = Redactor.from_env(os.environ, source, names=[token_env])
        self.timeout = timeout
        self.connect_timeout = connect_timeout or min(timeout, 10.0)
        self.retry = retry or RetryPolicy()
        self._client = httpx.Client(
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "astro-fleet-upgrade"},
            follow_redirects=False,
        )
        self._api_versions: dict[tuple[str, str], int] = {}  # (root, line) -> 1 or 2
        self._probe_lock = threading.Lock()

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> AirflowAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def probe(self, url: str, *, deployment_id: str, scheme: str = "https",
              line: str = "") -> AirflowEndpoint:
        """The Deployment's API at ``url``, its version asked as astro-cli asks it:
        ``GET /api/v2/version`` (Airflow 3), and on 404 ``/api/v1/version`` (Airflow 2).
        Kept per root and ``line`` (the Airflow version Astro reports: a migration to
        Airflow 3 moves the same root to ``/api/v2``). AirflowNotFound when neither answers;
        other failures (unavailable, time-outs) as any call's."""
        root = AirflowEndpoint.root_of(url, deployment_id=deployment_id, scheme=scheme)
        key = (root, line.split(".", 1)[0])
        with self._probe_lock:
            known = self._api_versions.get(key)
        if known is not None:
            return AirflowEndpoint(deployment_id, root, known)
        for version in (2, 1):
            endpoint = AirflowEndpoint(deployment_id, root, version)
            try:
                self.version(endpoint)
            except AirflowNotFound:
                continue
            with self._probe_lock:
                self._api_versions[key] = version
            return endpoint
        raise AirflowNotFound(
            f"Deployment {deployment_id}: neither {root}/api/v2/version nor "
            f"{root}/api/v1/version answered; Astro's Airflow API URL {url!r} is not an "
            "Airflow API.", deployment_id=deployment_id, url=url, status_code=404)

    def health(self, endpoint: AirflowEndpoint) -> Health:
        """``GET /api/v1/health`` or ``/api/v2/monitor/health``."""
        return self._typed(endpoint, endpoint.health_path, parse_health)

    def version(self, endpoint: AirflowEndpoint) -> AirflowVersion:
        """``GET /api/vN/version``."""
        return self._typed(endpoint, "/version", parse_version)

    def import_errors(
        self, endpoint: AirflowEndpoint, *, page_size: int = PAGE
    ) -> list[DagImportError]:
        """Every import error, following ``total_entries`` page by page."""
        return self._all_pages(endpoint, "/importErrors", parse_import_errors, page_size,
                               {"order_by": "import_error_id"})

    def dag(self, endpoint: AirflowEndpoint, dag_id: str) -> Dag:
        """``GET /dags/{dag_id}`` (AirflowNotFound when Airflow does not know the DAG)."""
        return self._typed(endpoint, f"/dags/{_segment(dag_id)}", parse_dag)

    def set_paused(self, endpoint: AirflowEndpoint, dag_id: str, paused: bool) -> Dag:
        """Pause or unpause a DAG (``PATCH /dags/{dag_id}?update_mask=is_paused``)."""
        return self._typed(endpoint, f"/dags/{_segment(dag_id)}", parse_dag, method="PATCH",
                           params={"update_mask": "is_paused"}, body={"is_paused": paused})

    def trigger_dag_run(self, endpoint: AirflowEndpoint, dag_id: str, run_id: str,
                        conf: Mapping[str, Any] | None = None) -> DagRun:
        """Start a run of ``dag_id`` now, with our ``run_id``; the run as created.

        A retried trigger whose first try did create the run answers 409: the run with our
        id is then ours, and is returned.
        """
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": dict(conf or {})}
        if endpoint.api_version == 2:
            # Airflow 3.0 requires the key (422 "Field required" without it); null means now.
            body["logical_date"] = None
        path = f"/dags/{_segment(dag_id)}/dagRuns"
        try:
            return self._typed(endpoint, path, parse_dag_run, method="POST", body=body)
        except AirflowAPIError as exc:
            if exc.status_code != 409:
                raise
        return self.dag_run(endpoint, dag_id, run_id)

    def dag_run(self, endpoint: AirflowEndpoint, dag_id: str, run_id: str) -> DagRun:
        """``GET /dags/{dag_id}/dagRuns/{run_id}``."""
        return self._typed(endpoint, f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}",
                           parse_dag_run)

    def task_instances(self, endpoint: AirflowEndpoint, dag_id: str,
                       run_id: str) -> list[TaskInstance]:
        """Every task instance of one run."""
        path = f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances"
        return self._all_pages(endpoint, path, parse_task_instances, PAGE, {})

    def _all_pages(self, endpoint: AirflowEndpoint, path: str,
                   parse: Callable[[Any], tuple[list[Any], int]], page_size: int,
                   params: Mapping[str, Any]) -> list[Any]:
        """Every entry of a paged list, following ``total_entries`` page by page."""
        found: list[Any] = []
        for _ in range(MAX_PAGES):
            page = {**params, "limit": page_size, "offset": len(found)}
            items, total = self._typed(endpoint, path, parse, params=page)
            found.extend(items)
            if not items or len(found) >= total:
                break
        return found

    def _typed(self, endpoint: AirflowEndpoint, path: str, parse: Any, *,
               method: str = "GET", **kw: Any) -> Any:
        url = endpoint.base + path
        doc = self.request_json(endpoint, path, method=method, **kw)
        try:
            return parse(doc)
        except (ValueError, TypeError) as exc:
            raise AirflowResponseError(
                f"Deployment {endpoint.deployment_id}: {method} {url} answered with a body "
                f"that is not the documented shape ({self._redact(str(exc))}).",
                deployment_id=endpoint.deployment_id, url=url, status_code=200,
            ) from None

    def request_json(
        self, endpoint: AirflowEndpoint, path: str, *, method: str = "GET",
        params: Mapping[str, Any] | None = None, body: Any = None,
    ) -> Any:
        """Send ``method path`` (JSON ``body``), retrying transient failures; return JSON.

        Writes are retried too: pausing is idempotent, and a trigger carries its own run id.
        """
        url = endpoint.base + path
        who = f"Deployment {endpoint.deployment_id}"
        dep = endpoint.deployment_id
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        call = f"{method} {url}"

        def on_response(resp: httpx.Response) -> Any:
            code = resp.status_code
            if 200 <= code < 300:
                try:
                    return resp.json()
                except ValueError:
                    raise AirflowResponseError(
                        f"{who}: {call} answered {code} with a body that is not JSON: "
                        f"{self._snippet(resp)}",
                        deployment_id=dep, url=url, status_code=code,
                    ) from None
            if code in (401, 403):
                raise AirflowAuthError(self._refused(who, call, resp),
                                       deployment_id=dep, url=url, status_code=code)
            if code == 404:
                raise AirflowNotFound(
                    f"{who}: {call} answered 404 Not Found: {self._snippet(resp)}. The "
                    "Airflow API URL or its version (/api/v1 vs /api/v2) is wrong, or it "
                    "does not know what was asked for.",
                    deployment_id=dep, url=url, status_code=code,
                )
            failure = f"{who}: {call} answered {code}: {self._snippet(resp)}"
            if code < 500 and code != 429:
                raise AirflowAPIError(failure, deployment_id=dep, url=url, status_code=code)
            raise Retry(AirflowUnavailable(failure, deployment_id=dep, url=url,
                                           status_code=code), retry_after(resp))

        def on_transport(exc: httpx.TransportError) -> AirflowAPIError:
            if isinstance(exc, httpx.TimeoutException):
                return AirflowTimeout(f"{who}: {call} timed out ({type(exc).__name__})",
                                      deployment_id=dep, url=url)
            return AirflowUnavailable(
                f"{who}: {call} failed: {self._redact(str(exc)) or type(exc).__name__}",
                deployment_id=dep, url=url)

        return read_with_retries(
            lambda limit: self._client.request(method, url, params=params, json=body,
                                               headers=headers, timeout=limit),
            policy=self.retry, timeout=self.timeout, connect_timeout=self.connect_timeout,
            on_response=on_response, on_transport=on_transport,
        )

    def _refused(self, who: str, call: str, resp: httpx.Response) -> str:
        """Why a 401/403 happened: no token was sent, or the one sent was refused."""
        said = f"{resp.status_code}: {self._snippet(resp)}"
        if not self._token:
            return (f"{who}: the Airflow API answered {call} with {said}; no token was sent "
                    f"(set ${self.token_env} to an API token with access to this Deployment).")
        return (f"{who}: the token was refused ({said}) for {call}. Check that "
                f"${self.token_env} is a valid, unexpired API token with access to this "
                "Deployment.")

    def _snippet(self, resp: httpx.Response) -> str:
        """The error's ``detail``/``title``/``message``, or the start of the body, redacted."""
        text = ""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            for key in ("detail", "title", "message"):
                if body.get(key):
                    text = _detail_text(body[key])
                    break
        if not text:
            text = resp.text.strip() or resp.reason_phrase
        text = " ".join(text.split())
        return self._redact(text[:300])


def _detail_text(detail: Any) -> str:
    """An error's ``detail``: FastAPI gives a string, a list of field errors, or an object."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                where = ".".join(str(p) for p in item.get("loc") or ())
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, Mapping):  # Airflow 3's database errors: reason, then message
        return str(detail.get("reason") or detail.get("message") or detail)
    return str(detail)
