"""Request routing: Astro platform API, Airflow REST API, runtime feed, admin.

Route map (all JSON):

    GET  /v1/organizations[/{org}]
    GET  /v1/organizations/{org}/deployments[?workspaceIds=&deploymentIds=&names=&limit=&offset=]
    GET  /v1/organizations/{org}/deployments/{id}
    GET  /v1/organizations/{org}/deployment-options
    GET  /v1/organizations/{org}/deployments/{id}/deploys[/{deployId}]
    POST /v1/organizations/{org}/deployments/{id}/deploys
    POST /v1/organizations/{org}/deployments/{id}/deploys/{deployId}/finalize
    GET  /d/{id}/api/v1/{health,version,importErrors[/{n}]}            (Airflow 2)
    GET  /d/{id}/api/v2/{monitor/health,version,importErrors[/{n}]}    (Airflow 3)
    GET|PATCH /d/{id}/api/vN/dags/{dag}, POST|GET .../dagRuns[/{run}[/taskInstances]]
                                                        (fleet_sim.astro.airflow_api)
    GET  /astronomer-runtime                                           (runtime feed)
    POST /_sim/build {"dockerfile": text}   the built image's Runtime label (image_label)
    GET|POST /_sim/clock {"mode": "manual"|"wall", "advance": seconds}  (the clock)
    GET  /_sim/requests   requests served by kind (platform API list/get/deploys, Airflow)
    GET|POST /_sim/throttle {"count": N, "retry_after": s|null, "kind": kind|null}
                          the next N platform API requests (of that kind) answer 429
    *    /_sim/...                                                     (admin, no auth)
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

from fleet_sim import apitoken
from fleet_sim.astro import airflow_api, image_label, views
from fleet_sim.astro.httpserver import Request, Response, json_response
from fleet_sim.astro.state import Conflict, NotFound, SimState
from fleet_sim.errors import InputError, SimError

NOT_FOUND_MESSAGE = "Deployment not found"  # guessed: no recorded 404 body
# Guessed too: Astro documents its rate limits (GET 25 requests/s per token, "Astro API
# overview") but no recorded 429 body; the shape is its error shape.
RATE_LIMITED_MESSAGE = "Too many requests: rate limit exceeded"


class SimApp:
    """Turns requests into responses against one SimState."""

    def __init__(self, state: SimState):
        self.state = state
        self.started_at = time.time()
        self._request_seq = 0
        # Requests served, by kind (GET /_sim/requests): what a client costs Astro's API.
        self.requests: Counter[str] = Counter()
        # Rate limiting on demand (POST /_sim/throttle): the next `count` platform API
        # requests (of `kind`, when set) answer 429, with Retry-After when set.
        self.throttle: dict = {"count": 0, "retry_after": None, "kind": None}
        self._throttle_lock = threading.Lock()

    # ------------------------------------------------------------ entry
    def __call__(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return self._astro_error(404, "Not found")
        head = parts[0]
        if head != "_sim":
            self.requests[_kind(request.method, parts)] += 1
        if head == "v1" and self._throttled(_kind(request.method, parts)):
            return self._rate_limited()
        try:
            if head == "v1":
                return self._platform(request, parts[1:])
            if head == "d" and len(parts) >= 4 and parts[2] == "api":
                return self._airflow(request, parts[1], parts[3], parts[4:])
            if head == "astronomer-runtime" and len(parts) == 1 and request.method == "GET":
                return json_response(200, self.state.catalog.feed())
            if head == "_sim":
                return self._admin(request, parts[1:])
        except InputError as exc:
            return self._astro_error(400, str(exc))
        except ValueError as exc:  # malformed JSON bodies
            return self._astro_error(400, f"Invalid request body: {exc}")
        return self._astro_error(404, "Not found")

    # -------------------------------------------------------- helpers
    def _astro_error(self, status: int, message: str) -> Response:
        self._request_seq += 1
        return json_response(
            status,
            {"message": message, "requestId": f"sim-{self._request_seq}", "statusCode": status},
        )

    def _throttled(self, kind: str) -> bool:
        with self._throttle_lock:
            spec = self.throttle
            if spec["count"] <= 0 or spec["kind"] not in (None, kind):
                return False
            spec["count"] -= 1
            return True

    def _rate_limited(self) -> Response:
        response = self._astro_error(429, RATE_LIMITED_MESSAGE)
        after = self.throttle["retry_after"]
        if after is not None:
            response.headers.append(("Retry-After", f"{after:g}"))
        return response

    def _set_throttle(self, body: object) -> dict:
        keys = {"count", "retry_after", "kind"}
        if not isinstance(body, dict) or not set(body) <= keys:
            raise InputError('throttle: expected {"count": N, "retry_after": seconds or '
                             'null, "kind": a request kind of /_sim/requests or null}')
        count, after, kind = body.get("count", 0), body.get("retry_after"), body.get("kind")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputError("throttle.count: expected a whole number >= 0")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int | float)
                                  or after < 0):
            raise InputError("throttle.retry_after: expected a number of seconds >= 0 or null")
        if kind is not None and not isinstance(kind, str):
            raise InputError("throttle.kind: expected a request kind or null")
        with self._throttle_lock:
            self.throttle = {"count": count, "retry_after": after, "kind": kind}
            return dict(self.throttle)

    def _claims(self, request: Request) -> dict | None:
        """Claims of a valid bearer token (non-empty permissions, not expired), else None."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        try:
            claims = apitoken.parse_claims(auth[7:].strip())
        except apitoken.TokenError:
            return None
        if not apitoken.permissions(claims) or apitoken.is_expired(claims):
            return None
        return claims

    # ------------------------------------------------------- platform
    def _platform(self, request: Request, parts: list[str]) -> Response:
        claims = self._claims(request)
        if claims is None:
            return self._astro_error(401, "Unauthorized: a valid Astro API token is required")
        if not parts or parts[0] != "organizations":
            return self._astro_error(404, "Not found")
        if request.method == "GET" and len(parts) == 1:
            orgs = self._organizations()
            return json_response(
                200, {"organizations": orgs, "limit": 20, "offset": 0, "totalCount": len(orgs)}
            )
        org = parts[1]
        token_org = apitoken.scoped_id(claims, "organizationId")
        if token_org and token_org != org:
            return self._astro_error(403, "You do not have permission to access this organization")
        rest = parts[2:]
        if not rest and request.method == "GET":
            return json_response(200, views.organization(org, self.started_at))
        if rest == ["deployment-options"] and request.method == "GET":
            return json_response(200, views.deployment_options(self._releases()))
        if rest and rest[0] == "deployments":
            return self._deployments(request, org, rest[1:])
        return self._astro_error(404, "Not found")

    def _organizations(self) -> list[dict]:
        ids = {str(self.state.config["organization_id"])}
        ids.update(d["organization_id"] for d in self.state.deployments.values())
        return [views.organization(i, self.started_at) for i in sorted(ids)]

    def _releases(self) -> list[dict]:
        releases = self.state.catalog.runtime_releases()
        allowed = self.state.config.get("runtime_releases")
        if allowed is not None:
            releases = [r for r in releases if r["version"] in set(allowed)]
        return releases

    def _deployments(self, request: Request, org: str, rest: list[str]) -> Response:
        state, t = self.state, self.state.now()
        if not rest:
            if request.method != "GET":
                return self._astro_error(405, "Method not allowed")
            return json_response(200, self._list(request, org, t))
        doc = state.visible(rest[0])
        if doc is None or doc["organization_id"] != org:
            return self._astro_error(404, NOT_FOUND_MESSAGE)
        if len(rest) == 1 and request.method == "GET":
            return json_response(200, views.platform_deployment(state, doc, t))
        if rest[1] != "deploys":
            return self._astro_error(404, "Not found")
        try:
            return self._deploys(request, doc, rest[2:])
        except NotFound as exc:
            return self._astro_error(404, str(exc))
        except Conflict as exc:
            return self._astro_error(exc.status, str(exc))

    def _list(self, request: Request, org: str, t: float) -> dict:
        q = request.query
        workspace_ids = _multi(q, "workspaceIds")
        deployment_ids = _multi(q, "deploymentIds")
        names = _multi(q, "names")
        limit = _int_param(q, "limit", 20, 1, 1000)
        offset = _int_param(q, "offset", 0, 0, 10**9)
        found = []
        for dep_id in sorted(self.state.deployments):
            doc = self.state.visible(dep_id)
            if doc is None or doc["organization_id"] != org:
                continue
            if workspace_ids and doc["workspace_id"] not in workspace_ids:
                continue
            if deployment_ids and doc["id"] not in deployment_ids:
                continue
            if names and doc["name"] not in names:
                continue
            found.append(doc)
        page = found[offset : offset + limit]
        return {
            "deployments": [views.platform_deployment(self.state, d, t) for d in page],
            "limit": limit,
            "offset": offset,
            "totalCount": len(found),
        }

    def _deploys(self, request: Request, doc: dict, rest: list[str]) -> Response:
        host = self.state.host
        if not rest:
            if request.method == "GET":
                limit = _int_param(request.query, "limit", 20, 1, 1000)
                offset = _int_param(request.query, "offset", 0, 0, 10**9)
                # The API documents no order (offset/limit only): served oldest first, as
                # created, so a client that assumes newest first reads the wrong page.
                page = doc["deploys"][offset : offset + limit]
                return json_response(200, {
                    "deploys": [views.platform_deploy(host, doc, d) for d in page],
                    "limit": limit, "offset": offset, "totalCount": len(doc["deploys"])})
            if request.method == "POST":
                body = request.json()
                if not isinstance(body, dict):
                    raise InputError("Invalid request body: expected an object")
                deploy, timing = self.state.create_deploy(doc, body)
                headers = [
                    ("X-Astro-Sim-Build-Seconds", f"{timing['build_seconds']:.6f}"),
                    ("X-Astro-Sim-Push-Seconds", f"{timing['push_seconds']:.6f}"),
                    (
                        "X-Astro-Sim-Wait-Sleep-Seconds",
                        f"{self.state.slept('wait_sleep_seconds'):.6f}",
                    ),
                    (
                        "X-Astro-Sim-Wait-Poll-Seconds",
                        f"{self.state.scaled('wait_poll_seconds'):.6f}",
                    ),
                    ("X-Astro-Sim-Time-Scale", f"{float(self.state.config['time_scale']):.9f}"),
                ]
                return json_response(200, views.platform_deploy(host, doc, deploy), headers)
            return self._astro_error(405, "Method not allowed")
        deploy = next((d for d in doc["deploys"] if d["id"] == rest[0]), None)
        if deploy is None:
            raise NotFound("Deploy not found")
        if len(rest) == 1 and request.method == "GET":
            return json_response(200, views.platform_deploy(host, doc, deploy))
        if rest[1:] == ["finalize"] and request.method == "POST":
            body = request.json()
            if not isinstance(body, dict):
                raise InputError("Invalid request body: expected an object")
            deploy = self.state.finalize_deploy(doc, deploy["id"], body)
            return json_response(200, views.platform_deploy(host, doc, deploy))
        return self._astro_error(404, "Not found")

    # -------------------------------------------------------- airflow
    def _airflow(self, request: Request, dep_id: str, version: str, rest: list[str]) -> Response:
        if not request.headers.get("authorization"):
            token = "none"
        else:
            token = "good" if self._claims(request) is not None else "bad"
        return airflow_api.handle(self.state, request, dep_id, version, rest, token)

    # ---------------------------------------------------------- admin
    def _admin(self, request: Request, parts: list[str]) -> Response:
        try:
            return self._admin_route(request, parts)
        except NotFound as exc:
            return self._astro_error(404, str(exc))
        except Conflict as exc:
            return self._astro_error(exc.status, str(exc))
        except SimError as exc:
            return self._astro_error(400, str(exc))

    def _admin_route(self, request: Request, parts: list[str]) -> Response:
        state, t, method = self.state, self.state.now(), request.method
        if parts == ["health"]:
            return json_response(
                200, {"status": "ok", "pid": os.getpid(), "url": f"http://{state.host}"}
            )
        if parts == ["clock"]:
            if method == "POST":
                body = request.json()
                if not isinstance(body, dict) or not set(body) <= {"mode", "advance"}:
                    raise InputError('clock: expected {"mode": "manual"|"wall", "advance": '
                                     "<simulated seconds>}")
                state.set_clock(body.get("mode"), body.get("advance"))
            return json_response(200, views.clock(state))
        if parts == ["state"] and method == "GET":
            return json_response(
                200,
                {
                    "config": state.config,
                    "faults": state.faults,
                    "deployments": [
                        views.admin_deployment(state, state.deployments[k], t)
                        for k in sorted(state.deployments)
                    ],
                },
            )
        if parts == ["requests"] and method == "GET":
            return json_response(200, dict(sorted(self.requests.items())))
        if parts == ["throttle"]:
            if method == "POST":
                return json_response(200, self._set_throttle(request.json()))
            with self._throttle_lock:
                return json_response(200, dict(self.throttle))
        if parts == ["reset"] and method == "POST":
            state.reset()
            return json_response(200, {"status": "reset"})
        if parts == ["config"]:
            if method == "POST":
                body = request.json()
                if not isinstance(body, dict):
                    raise InputError("config: expected a mapping of setting -> value")
                state.configure(body)
            return json_response(200, state.config)
        if parts and parts[0] == "deployments":
            return self._admin_deployments(request, parts[1:], t)
        if parts and parts[0] == "faults":
            return self._admin_faults(request, parts[1:])
        if parts == ["build"] and method == "POST":
            return self._build(request)
        if len(parts) == 2 and parts[0] == "deploy-attempt" and method == "POST":
            return json_response(200, {"noop": state.deploy_attempt(parts[1])})
        if len(parts) == 3 and parts[0] == "registry" and method == "PUT":
            if self._claims(request) is None:
                return self._astro_error(401, "unauthorized: authentication required")
            doc = state.visible(parts[1])
            if doc is None:
                return self._astro_error(404, NOT_FOUND_MESSAGE)
            body = request.json()
            digest = state.push_image(doc, parts[2], body if isinstance(body, dict) else {})
            return json_response(201, {"status": "pushed", "digest": digest})
        return self._astro_error(404, "Not found")

    def _build(self, request: Request) -> Response:
        """What Docker's daemon does for ``astro deploy``: build, then read the label."""
        body = request.json()
        text = body.get("dockerfile") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise InputError('build: expected {"dockerfile": "<the Dockerfile\'s text>"}')
        floating = image_label.floating_tags(self.state.catalog.feed())
        base = image_label.read_base_image(text, floating)
        return json_response(200, {"firstFrom": base.first_from, "image": base.image,
                                   "label": base.label})

    def _admin_deployments(self, request: Request, rest: list[str], t: float) -> Response:
        state, method = self.state, request.method
        if not rest:
            if method == "GET":
                return json_response(
                    200,
                    [
                        views.admin_deployment(state, state.deployments[k], t)
                        for k in sorted(state.deployments)
                    ],
                )
            if method == "POST":
                body = request.json()
                specs = (
                    body.get("deployments")
                    if isinstance(body, dict) and "deployments" in body
                    else body
                )
                specs = specs if isinstance(specs, list) else [specs]
                docs = [state.add_deployment(spec) for spec in specs]
                return json_response(201, [views.admin_deployment(state, d, t) for d in docs])
            return self._astro_error(405, "Method not allowed")
        dep_id = rest[0]
        if method == "GET":
            doc = state.deployments.get(dep_id)
            if doc is None:
                raise NotFound(f"no simulated Deployment with id {dep_id!r}")
            return json_response(200, views.admin_deployment(state, doc, t))
        if method in ("POST", "PATCH"):
            body = request.json()
            if not isinstance(body, dict):
                raise InputError("deployment: expected a mapping of field -> value")
            doc = state.update_deployment(dep_id, body)
            return json_response(200, views.admin_deployment(state, doc, t))
        if method == "DELETE":
            state.delete_deployment(dep_id)
            return json_response(200, {"deleted": dep_id})
        return self._astro_error(405, "Method not allowed")

    def _admin_faults(self, request: Request, rest: list[str]) -> Response:
        state, method = self.state, request.method
        if not rest:
            if method == "GET":
                return json_response(200, {"faults": state.faults})
            if method in ("POST", "PUT"):
                body = request.json()
                faults = body.get("faults") if isinstance(body, dict) else None
                if not isinstance(faults, dict):
                    raise InputError(
                        'faults: expected {"faults": {<deployment id>: {<field>: <value>}}}'
                    )
                state.replace_all_faults(faults)
                return json_response(200, {"faults": state.faults})
            return self._astro_error(405, "Method not allowed")
        dep_id = rest[0]
        if method == "GET":
            return json_response(200, state.faults.get(dep_id, {}))
        if method in ("PUT", "POST", "PATCH"):
            body = request.json()
            if not isinstance(body, dict):
                raise InputError(f"faults.{dep_id}: expected a mapping of fault fields")
            return json_response(200, state.set_faults(dep_id, body))
        if method == "DELETE":
            state.clear_faults(dep_id)
            return json_response(200, {})
        return self._astro_error(405, "Method not allowed")


def _kind(method: str, parts: list[str]) -> str:
    """What a request is, for the request counts: the platform API's list of Deployments,
    one Deployment, its deploys, another platform call, an Airflow API call."""
    if parts[0] == "d":
        return "airflow"
    if parts[0] != "v1":
        return "other"
    tail = parts[3:]  # after v1/organizations/{org}
    if method == "GET" and tail == ["deployments"]:
        return "platform: list Deployments"
    if method == "GET" and len(tail) == 2 and tail[0] == "deployments":
        return "platform: get Deployment"
    if len(tail) >= 3 and tail[0] == "deployments" and tail[2] == "deploys":
        return f"platform: {method} deploys"
    return f"platform: {method} other"


def _multi(query: dict[str, list[str]], name: str) -> set[str]:
    """An array query parameter as the platform API's spec declares it (form, explode):
    repeated, ``workspaceIds=a&workspaceIds=b``. A comma-joined ``a,b`` is one value, an
    id no workspace has."""
    return {v for v in query.get(name, []) if v}


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if not raw:
        return default
    text = raw[0]
    if not text.lstrip("-").isdigit():
        raise InputError(f"Invalid query parameter values: field {name} must be an integer")
    value = int(text)
    if value < low:
        raise InputError(f"Invalid query parameter values: field {name} must be >= {low}")
    return min(value, high)
