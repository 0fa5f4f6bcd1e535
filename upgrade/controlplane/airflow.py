"""Read a Deployment's Airflow REST API: health, version and DAG import errors.

Airflow 2 serves ``/api/v1`` and Airflow 3 ``/api/v2`` (FastAPI; ``/api/v1`` is gone); the
version is picked from the suffix of the URL Astro gives (``webServerAirflowApiUrl``,
which has no scheme). One ``AirflowAPI`` holds one pooled ``httpx.Client`` and may be
used from many worker threads at once.

Errors::

    UpgradeError
    └── AirflowAPIError            any other unexpected status (names the Deployment)
        ├── AirflowAuthError       401/403: the token was refused (never retried)
        ├── AirflowNotFound        404: wrong URL or API version
        ├── AirflowResponseError   a 2xx body that is not the documented shape
        └── AirflowUnavailable     5xx or connection errors, still failing after retries
            └── AirflowTimeout     the API did not answer in time, after retries
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
IMPORT_ERRORS_PAGE = 100
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
        """Parse Astro's ``airflow_api_url`` (schemeless or not, ending ``/api/v1|v2``)."""
        text = (url or "").strip()
        if "://" not in text:
            text = f"{scheme}://{text}"
        text = re.split(r"[?#]", text, maxsplit=1)[0].rstrip("/")
        match = re.fullmatch(r"(?P<root>https?://[^/\s]+(?:/[^\s]*)?)/api/v(?P<v>[12])", text)
        if not match:
            raise AirflowAPIError(
                f"Deployment {deployment_id}: cannot use Airflow API URL {url!r}; Astro gives "
                "one ending in /api/v1 (Airflow 2) or /api/v2 (Airflow 3), over http(s).",
                deployment_id=deployment_id, url=url,
            )
        return cls(deployment_id, match.group("root"), int(match.group("v")))

    @property
    def base(self) -> str:
        """The API base URL, e.g. ``https://host/d/abc/api/v2``."""
        return f"{self.root}/api/v{self.api_version}"

    @property
    def health_path(self) -> str:
        """``/health`` on Airflow 2, ``/monitor/health`` on Airflow 3."""
        return "/health" if self.api_version == 1 else "/monitor/health"


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

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> AirflowAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self, endpoint: AirflowEndpoint) -> Health:
        """``GET /api/v1/health`` or ``/api/v2/monitor/health``."""
        return self._typed(endpoint, endpoint.health_path, parse_health)

    def version(self, endpoint: AirflowEndpoint) -> AirflowVersion:
        """``GET /api/vN/version``."""
        return self._typed(endpoint, "/version", parse_version)

    def import_errors(
        self, endpoint: AirflowEndpoint, *, page_size: int = IMPORT_ERRORS_PAGE
    ) -> list[DagImportError]:
        """Every import error, following ``total_entries`` page by page."""
        found: list[DagImportError] = []
        for _ in range(MAX_PAGES):
            params = {"limit": page_size, "offset": len(found), "order_by": "import_error_id"}
            items, total = self._typed(
                endpoint, "/importErrors", parse_import_errors, params=params
            )
            found.extend(items)
            if not items or len(found) >= total:
                break
        return found

    def _typed(self, endpoint: AirflowEndpoint, path: str, parse: Any, **kw: Any) -> Any:
        url = endpoint.base + path
        doc = self.get_json(endpoint, path, **kw)
        try:
            return parse(doc)
        except (ValueError, TypeError) as exc:
            raise AirflowResponseError(
                f"Deployment {endpoint.deployment_id}: GET {url} answered with a body that is "
                f"not the documented shape ({self._redact(str(exc))}).",
                deployment_id=endpoint.deployment_id, url=url, status_code=200,
            ) from None

    def get_json(
        self, endpoint: AirflowEndpoint, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """GET ``path`` under the endpoint's base, retrying transient failures; return JSON."""
        url = endpoint.base + path
        who = f"Deployment {endpoint.deployment_id}"
        dep = endpoint.deployment_id
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}

        def on_response(resp: httpx.Response) -> Any:
            code = resp.status_code
            if 200 <= code < 300:
                try:
                    return resp.json()
                except ValueError:
                    raise AirflowResponseError(
                        f"{who}: GET {url} answered {code} with a body that is not JSON: "
                        f"{self._snippet(resp)}",
                        deployment_id=dep, url=url, status_code=code,
                    ) from None
            if code in (401, 403):
                raise AirflowAuthError(
                    f"{who}: the Airflow API refused the token ({code}) for GET {url}: "
                    f"{self._snippet(resp)}. Check that ${self.token_env} is set to a "
                    "token with access to this Deployment.",
                    deployment_id=dep, url=url, status_code=code,
                )
            if code == 404:
                raise AirflowNotFound(
                    f"{who}: GET {url} answered 404 Not Found: {self._snippet(resp)}. The "
                    "Airflow API URL or its version (/api/v1 vs /api/v2) is wrong.",
                    deployment_id=dep, url=url, status_code=code,
                )
            failure = f"{who}: GET {url} answered {code}: {self._snippet(resp)}"
            if code < 500 and code != 429:
                raise AirflowAPIError(failure, deployment_id=dep, url=url, status_code=code)
            raise Retry(AirflowUnavailable(failure, deployment_id=dep, url=url,
                                           status_code=code), retry_after(resp))

        def on_transport(exc: httpx.TransportError) -> AirflowAPIError:
            if isinstance(exc, httpx.TimeoutException):
                return AirflowTimeout(f"{who}: GET {url} timed out ({type(exc).__name__})",
                                      deployment_id=dep, url=url)
            return AirflowUnavailable(
                f"{who}: GET {url} failed: {self._redact(str(exc)) or type(exc).__name__}",
                deployment_id=dep, url=url)

        return read_with_retries(
            lambda limit: self._client.get(url, params=params, headers=headers, timeout=limit),
            policy=self.retry, timeout=self.timeout, connect_timeout=self.connect_timeout,
            on_response=on_response, on_transport=on_transport,
        )

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
                    text = str(body[key])
                    break
        if not text:
            text = resp.text.strip() or resp.reason_phrase
        text = " ".join(text.split())
        return self._redact(text[:300])
