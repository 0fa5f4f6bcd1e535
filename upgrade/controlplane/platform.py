"""Astro's platform API, read-only: Deployments (one, a workspace's, the organisation's) and
their deploy records.

The astro CLI reads Deployments this way itself: ``deploy --wait`` polls
``GET /organizations/{org}/deployments/{id}`` and ``deployment list`` pages through
``GET /organizations/{org}/deployments`` (base ``https://api.<domain>/v1`` since
astro-cli 1.43). One pooled
HTTP client costs well under a millisecond of CPU per read, where one ``astro deployment
inspect`` process costs tens of milliseconds, so status reads (verification, verify-all)
go here when a token allows it. Deploys never do: only the CLI builds and pushes images.

Failures are the CLI path's typed errors, so callers need not know which path read::

    AstroError (upgrade.astro)
    ├── AstroAuthError        401/403: the token was refused (never retried)
    ├── DeploymentNotFound    404, or the Deployment is in another workspace
    └── PlatformError         5xx, 429, connection errors and time-outs still failing after
                              the retries, or a body that is not the documented shape

A 429 is waited out as its ``Retry-After`` says (RATE_LIMITED s when it says nothing), by
every thread of the reader (``Throttle``): none asks again before that time.

The token is sent only over https or to this machine, and never appears in a message.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from upgrade.config.control_plane import ControlPlaneConfig, is_loopback
from upgrade.controlplane.deploy_record import DeployRecord, deploy_record, newest_first
from upgrade.controlplane.deployment import DeploymentInfo, parse_timestamp
from upgrade.controlplane.http import (
    Retry,
    RetryPolicy,
    Throttle,
    read_with_retries,
    retry_after,
    retry_policy,
)
from upgrade.errors import AstroAuthError, DeploymentNotFound, InputError, PlatformError
from upgrade.model.redact import Redactor

log = logging.getLogger(__name__)

TOKEN_ENV = "ASTRO_API_TOKEN"  # the variable the astro CLI authenticates with in CI
DEFAULT_DOMAIN = "astronomer.io"
PAGE = 1000  # the platform API's largest page
DEPLOYS_PAGE = 100  # deploy records per page
MAX_DEPLOY_PAGES = 100  # a runaway total must not keep us paging forever
LIST_TIMEOUT = 30.0  # s for one page of up to PAGE Deployments
SNIPPET = 200  # characters of an error body kept in a message
# s to wait after a 429 without Retry-After. Astro documents its limits per second (GET 25
# requests/s per token, "Astro API overview"), so a few seconds let its window pass.
RATE_LIMITED = 5.0
# Every verification thread may hold one connection; more than this are opened and closed.
KEEPALIVE = 64
_PR_DOMAIN = re.compile(r"^(pr\d+)\.(.+)$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PlatformReader:
    """Astro's platform API, read-only, over one pooled client (safe to share across threads)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        organization: str | None = None,
        domain: str = DEFAULT_DOMAIN,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``sleep`` and ``clock`` wait out retries and 429s (tests pass a simulated pair)."""
        self.base_url = base_url.rstrip("/")
        self.domain = domain
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.retry = retry or RetryPolicy()
        self._token = token
        self._organization = organization
        self._org_lock = threading.Lock()
        self._sleep = sleep
        self._throttle = Throttle(sleep, clock)
        self._redact = Redactor.from_env(os.environ).also(token)
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,  # a redirect could carry the token elsewhere
            limits=httpx.Limits(max_keepalive_connections=KEEPALIVE),
            headers={"Accept": "application/json", "User-Agent": "astro-fleet-upgrade",
                     "Authorization": f"Bearer {token}"},
        )

    @classmethod
    def for_config(cls, config: ControlPlaneConfig) -> PlatformReader | None:
        """The reader for the platform API and token of ``config``.

        None without ``ASTRO_API_TOKEN``, or when the API would be reached in clear text
        off this machine (the token is a credential).
        """
        base, token, domain = cls.endpoint(config)
        if not token:
            return None
        parts = urlsplit(base)
        if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
            return None
        return cls(base, token, domain=domain, timeout=config.http_timeout,
                   connect_timeout=config.http_connect_timeout, retry=retry_policy(config))

    @staticmethod
    def endpoint(config: ControlPlaneConfig) -> tuple[str, str, str]:
        """(base URL, token or '', Astro domain): ``api_url``, else the astro CLI's own
        (from ``$ASTRO_DOMAIN``)."""
        env = {**os.environ, **config.extra_env}
        token = env.get(TOKEN_ENV, "").strip()
        domain = env.get("ASTRO_DOMAIN") or DEFAULT_DOMAIN
        return config.api_url or api_base(domain), token, domain

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    def __enter__(self) -> PlatformReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def organization(self) -> str:
        """The organisation id: from the token's ``organizationId:`` permission, as astro-cli."""
        with self._org_lock:
            if self._organization:
                return self._organization
            for perm in token_permissions(self._token):
                if perm.startswith("organizationId:") and perm.split(":", 1)[1]:
                    self._organization = perm.split(":", 1)[1]
                    return self._organization
            # As astro-cli: the first organisation GET /organizations lists.
            orgs = self._get("/organizations").get("organizations") or []
            if not orgs or not isinstance(orgs[0], Mapping) or not orgs[0].get("id"):
                raise PlatformError("the Astro API token sees no organisation.")
            self._organization = str(orgs[0]["id"])
            return self._organization

    def deployment(self, deployment_id: str, workspace_id: str | None = None) -> DeploymentInfo:
        """``GET /organizations/{org}/deployments/{id}``, as ``astro deployment inspect`` reads it.

        With ``workspace_id``, a Deployment of another workspace is DeploymentNotFound, as
        the CLI's ``inspect --workspace-id`` says.
        """
        _check_id("deployment id", deployment_id)
        org = self.organization()
        doc = self._get(f"/organizations/{quote(org, safe='')}/deployments/"
                        f"{quote(deployment_id, safe='')}", deployment_id=deployment_id)
        info = platform_info(doc, self.domain)
        if info.id != deployment_id:
            raise PlatformError(f"Astro's API answered for Deployment {info.id} when asked for "
                                f"{deployment_id}; refusing to use it.",
                                deployment_id=deployment_id)
        if workspace_id is not None and info.workspace_id != workspace_id:
            raise DeploymentNotFound(
                f"Deployment {deployment_id} is not in workspace {workspace_id} (Astro has it "
                f"in {info.workspace_id or 'no workspace'}). Check its workspace id in the "
                "inventory.",
                deployment_id=deployment_id,
                astro_message=f"not in workspace {workspace_id}",
            )
        return info

    def workspace(self, workspace_id: str) -> dict[str, DeploymentInfo]:
        """Every Deployment of one workspace, by id (paged, as ``astro deployment list``)."""
        return self.deployments((workspace_id,))

    def deployments(self, workspace_ids: Sequence[str] = ()) -> dict[str, DeploymentInfo]:
        """Every Deployment of the organisation the token sees, or of ``workspace_ids``."""
        return {dep_id: platform_info(item, self.domain)
                for dep_id, item in self.listed(workspace_ids).items()}

    def listed(self, workspace_ids: Sequence[str] = ()) -> dict[str, Mapping[str, Any]]:
        """``deployments``' answer as Astro gave it, each ``Deployment`` object by id: a
        caller that reads a few of many converts only those (``platform_info``)."""
        for workspace_id in workspace_ids:
            _check_id("workspace id", workspace_id)
        org = self.organization()
        found: dict[str, Mapping[str, Any]] = {}
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": PAGE, "offset": offset}
            if workspace_ids:
                # Form style with explode (the platform API's spec): workspaceIds=a&workspaceIds=b,
                # never one comma-joined value.
                params["workspaceIds"] = list(workspace_ids)
            page = self._get(f"/organizations/{quote(org, safe='')}/deployments", params=params,
                             timeout=max(self.timeout, LIST_TIMEOUT))
            items = page.get("deployments")
            if not isinstance(items, list):
                raise PlatformError("Astro's API answered a Deployment list without a "
                                    "'deployments' list.")
            for item in items:
                if not isinstance(item, Mapping) or not item.get("id"):
                    raise PlatformError("Astro's API answered a Deployment without an id.")
                found[str(item["id"])] = item
            offset += len(items)
            total = page.get("totalCount")
            if not items or not isinstance(total, int) or offset >= total:
                return found

    def deploys(self, deployment_id: str) -> list[DeployRecord]:
        """Every deploy record of one Deployment, newest first. The API pages by offset and
        limit and documents no order, so every page is read and the records are ordered
        here by ``createdAt`` (records without one last)."""
        _check_id("deployment id", deployment_id)
        org = self.organization()
        path = (f"/organizations/{quote(org, safe='')}/deployments/"
                f"{quote(deployment_id, safe='')}/deploys")
        records: list[DeployRecord] = []
        for _ in range(MAX_DEPLOY_PAGES):
            page = self._get(path, params={"limit": DEPLOYS_PAGE, "offset": len(records)},
                             deployment_id=deployment_id)
            items = page.get("deploys")
            if not isinstance(items, list):
                raise PlatformError("Astro's API answered a deploy list without a 'deploys' "
                                    "list.", deployment_id=deployment_id)
            records.extend(deploy_record(item) for item in items)
            total = page.get("totalCount")
            if not items or not isinstance(total, int) or len(records) >= total:
                break
        return newest_first(records)

    def _get(self, path: str, params: Mapping[str, Any] | None = None, *,
             deployment_id: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """GET one JSON object, retrying 5xx, 429, connection errors and time-outs."""
        url = self.base_url + path

        def on_response(resp: httpx.Response) -> dict[str, Any]:
            code = resp.status_code
            if code == 200:
                return self._json(resp, url, deployment_id)
            said = self._message(resp)
            context = {"deployment_id": deployment_id, "astro_message": said}
            if code in (401, 403):
                raise AstroAuthError(
                    f"Astro's API refused the token ({code}) for GET {url}: {said}. Check "
                    f"that ${TOKEN_ENV} holds a valid, unexpired token with access to the "
                    "workspace.", **context)
            if code == 404:
                raise DeploymentNotFound(
                    f"GET {url} answered 404: {said}. Check the Deployment id and its "
                    "workspace id in the inventory.", **context)
            failure = PlatformError(f"GET {url} answered {code}: {said}", status_code=code,
                                    **context)
            if code == 429:
                # Rate limited: the token, not this request. Every thread holds off.
                after = retry_after(resp)
                wait = RATE_LIMITED if after is None else after
                self._throttle.hold(wait)
                raise Retry(failure, wait)
            if code < 500:
                raise failure
            raise Retry(failure, retry_after(resp))

        def send(limit: httpx.Timeout) -> httpx.Response:
            pause = self._throttle.pause()
            if pause >= policy.total:
                raise PlatformError(
                    f"GET {url} not sent: Astro answered 429 and asked for no requests for "
                    f"another {pause:.0f} s, longer than this read may wait "
                    f"({policy.total:g} s).", status_code=429, deployment_id=deployment_id)
            self._throttle.wait()
            return self._client.get(url, params=params, timeout=limit)

        def on_transport(exc: httpx.TransportError) -> PlatformError:
            if isinstance(exc, httpx.TimeoutException):
                return PlatformError(f"GET {url} timed out ({type(exc).__name__})",
                                     deployment_id=deployment_id)
            detail = self._redact(str(exc)) or type(exc).__name__
            return PlatformError(f"GET {url} failed: {detail}", deployment_id=deployment_id)

        per_try = self.timeout if timeout is None else timeout
        # A long read (a page of 1,000 Deployments) gets at least one whole try.
        policy = replace(self.retry, total=max(self.retry.total, per_try))
        return read_with_retries(
            send, policy=policy, timeout=per_try,
            connect_timeout=self.connect_timeout, on_response=on_response,
            on_transport=on_transport, sleep=self._sleep,
        )

    def _json(self, resp: httpx.Response, url: str, deployment_id: str | None
              ) -> dict[str, Any]:
        try:
            doc = resp.json()
        except ValueError:
            raise PlatformError(f"GET {url} answered 200 with a body that is not JSON.",
                                status_code=200, deployment_id=deployment_id) from None
        if not isinstance(doc, dict):
            raise PlatformError(f"GET {url} answered 200 with a body that is not an object.",
                                status_code=200, deployment_id=deployment_id)
        return doc

    def _message(self, resp: httpx.Response) -> str:
        """Astro's ``message`` (as the CLI shows it), else the reason; redacted, cut short."""
        try:
            body = resp.json()
        except ValueError:
            body = None
        text = str(body.get("message") or "") if isinstance(body, Mapping) else ""
        text = " ".join(text.split())[:SNIPPET]
        return self._redact(text) or resp.reason_phrase or f"status {resp.status_code}"


def platform_info(item: Any, domain: str = DEFAULT_DOMAIN) -> DeploymentInfo:
    """A platform API ``Deployment`` object as the ``DeploymentInfo`` inspect gives."""
    if not isinstance(item, Mapping) or not item.get("id"):
        raise PlatformError("Astro's API answered a Deployment without an id.")

    def text(*keys: str) -> str:
        for key in keys:
            if item.get(key) not in (None, ""):
                return str(item[key])
        return ""

    dep_id, ws = text("id"), text("workspaceId")
    kind = text("type")
    return DeploymentInfo(
        id=dep_id, name=text("name"), workspace_id=ws,
        # The CLI still reads runtimeVersion, deprecated for astroRuntimeVersion.
        runtime_version=text("runtimeVersion", "astroRuntimeVersion"),
        airflow_version=text("airflowVersion"), status=text("status").upper(),
        image_tag=text("imageTag"), airflow_api_url=text("webServerAirflowApiUrl"),
        webserver_url=text("webServerUrl"),
        deployment_url=f"cloud.{domain}/{ws}/deployments/{dep_id}",
        created_at=parse_timestamp(item.get("createdAt")),
        updated_at=parse_timestamp(item.get("updatedAt")),
        description=text("description"), workspace_name=text("workspaceName"),
        deployment_type=kind, executor=text("executor"),
        # inspect prints N/A for a Standard Deployment's cluster.
        cluster_id="N/A" if kind == "STANDARD" else text("clusterId"),
        dag_deploy_enabled=bool(item.get("isDagDeployEnabled", False)),
        ci_cd_enforcement=bool(item.get("isCicdEnforced", False)),
        raw=item,
    )


def api_base(domain: str) -> str:
    """The platform API's base URL for an Astro domain, as astro-cli v1.43+ builds it:
    ``https://api.<domain>/v1``; ``prNNNN.<domain>`` previews get ``prNNNN.api.<domain>``."""
    domain = domain.strip().lower().removeprefix("www.")
    if domain == "localhost":
        return "http://localhost:8888/v1"
    if m := _PR_DOMAIN.match(domain):
        return f"https://{m.group(1)}.api.{m.group(2)}/v1"
    return f"https://api.{domain}/v1"


def token_permissions(token: str) -> list[str]:
    """The JWT's ``permissions`` claim, read without verifying it (as astro-cli does)."""
    parts = token.split(".")
    if len(parts) != 3:
        return []
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeError):
        return []
    perms = claims.get("permissions") if isinstance(claims, dict) else None
    return [p for p in perms if isinstance(p, str)] if isinstance(perms, list) else []


def _check_id(kind: str, value: str) -> None:
    # Ids go into the URL path: nothing that could change the path or open a picker.
    if not isinstance(value, str) or not _ID.match(value):
        raise InputError(
            f"{kind} {value!r} is not a valid Astro id (letters, digits, '-', '_', '.'; "
            "must not start with '-'). Fix it in the inventory."
        )
