"""What every ``astro-sim`` cloud command shares: output, auth, the API.

Mirrors astro-cli's pre-run hook: ``ASTRO_API_TOKEN`` is
read from the environment, announced with ``Using an Astro API Token`` (except
for ``deployment inspect``), parsed as a JWT without verification, and its
``organizationId``/``workspaceId`` permissions become the context. The token
is sent as a Bearer header and never printed.
"""

from __future__ import annotations

import json
import os
import sys

from fleet_sim import apitoken
from fleet_sim.astro_cli.goformat import go_table
from fleet_sim.client import SimConnectionError, request

NOT_IN_WORKSPACE = (
    "the Deployment specified was not found in this workspace. Your account or API Key may not "
    "have access to the deployment specified"
)
NO_WORKSPACE = (
    "current workspace context not set, you can switch to a workspace with \n"
    "\tastro workspace switch WORKSPACEID"
)


DEFAULT_VERSION = "1.45.0"
VERSION_ENV = "ASTRO_SIM_VERSION"  # the astro-cli release astro-sim behaves as
# What changed when (astro-cli's history): git metadata on deploys (GitHub remotes only);
# --json on `deployment list`; GENERIC git metadata for every other remote.
GIT_METADATA = (1, 40, 0)
LIST_JSON = (1, 42, 0)
GENERIC_GIT = (1, 43, 0)


def cli_version() -> str:
    """The release astro-sim behaves as: ``$ASTRO_SIM_VERSION``, else DEFAULT_VERSION."""
    return os.environ.get(VERSION_ENV, "").strip().removeprefix("v") or DEFAULT_VERSION


def at_least(release: tuple[int, int, int]) -> bool:
    """Whether astro-sim behaves as ``release`` or later."""
    parts = []
    for piece in cli_version().split("-")[0].split(".")[:3]:
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts + [0] * (3 - len(parts))) >= release


class CliError(Exception):
    """Ends the command with cobra's ``Error: <message>`` on stderr and exit 1."""


class CliExit(Exception):
    """Ends the command with this exit code (output already printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def out(text: str = "", end: str = "\n") -> None:
    """Print to stdout and flush (deploys sleep between lines)."""
    sys.stdout.write(text + end)
    sys.stdout.flush()


class Context:
    """The authenticated context of one command run."""

    def __init__(self, base_url: str, token: str, claims: dict):
        self.base_url = base_url
        self.token = token
        self.claims = claims
        self.organization = apitoken.scoped_id(claims, "organizationId")
        self.workspace = apitoken.scoped_id(claims, "workspaceId")

    @classmethod
    def setup(cls, announce: bool) -> Context:
        """Run the pre-run hook: find the simulator, announce and read the token."""
        base_url = os.environ.get("ASTRO_SIM_URL", "").rstrip("/")
        if not base_url:
            raise CliError(
                "ASTRO_SIM_URL is not set: point it at the Astro simulator, e.g. "
                "ASTRO_SIM_URL=http://127.0.0.1:PORT (see docs/simulator.md)"
            )
        token = os.environ.get("ASTRO_API_TOKEN", "").strip()
        if not token:
            raise CliError(
                "no context set, have you authenticated to Astro or Astro Private Cloud? "
                "Run astro login and try again"
            )
        if announce:
            out("Using an Astro API Token")
        try:
            claims = apitoken.parse_claims(token)
        except apitoken.TokenError as exc:
            raise CliError("API Token is invalid or malformed") from exc
        if apitoken.is_expired(claims):
            out(f"The given API Token {claims.get('apiTokenId', '')} has expired")
            raise CliError("API Token is expired")
        # An empty permissions claim is an error astro-cli swallows (debug log only);
        # the API then answers 401, which is what the user sees.
        ctx = cls(base_url, token, claims)
        if not ctx.organization:
            orgs = ctx.api("GET", "/v1/organizations").get("organizations") or []
            ctx.organization = orgs[0]["id"] if orgs else ""
        return ctx

    def coalesce_workspace(self, flag: str) -> str:
        """astro-cli coalesceWorkspace (v1.44+): the flag wins, else the context."""
        if flag:
            return flag
        if self.workspace:
            return self.workspace
        raise CliError("failed to get current Workspace: " + NO_WORKSPACE)

    def call(
        self, method: str, path: str, body: object = None
    ) -> tuple[int, dict[str, str], object]:
        """One API call: (status, headers, decoded JSON or None)."""
        try:
            status, headers, raw = request(self.base_url, method, path, body, token=self.token)
        except SimConnectionError as exc:
            verb = method.capitalize()
            raise CliError(f'{verb} "{self.base_url}{path}": {exc}') from exc
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return status, headers, payload

    def api(self, method: str, path: str, body: object = None) -> dict:
        """An Astro API call; non-2xx raises CliError like NormalizeAPIError."""
        status, _, payload = self.call(method, path, body)
        if status not in (200, 201, 204):
            raise CliError(api_error_message(status, payload))
        return payload if isinstance(payload, dict) else {}

    def list_deployments(self, workspace: str) -> list[dict]:
        """ListDeployments: every Deployment of the org (or one workspace)."""
        found: list[dict] = []
        offset = 0
        while True:
            query = f"?limit=1000&offset={offset}"
            if workspace:
                query += f"&workspaceIds={workspace}"
            page = self.api("GET", f"/v1/organizations/{self.organization}/deployments{query}")
            items = page.get("deployments") or []
            found.extend(items)
            offset += len(items)
            if not items or offset >= int(page.get("totalCount") or 0):
                return found

    def listed_for(self, workspace: str) -> list[dict]:
        """ListDeployments as astro-cli's GetDeployment calls it: whatever error the list
        returns (an API error, a 5xx, the network) comes back wrapped in the not-found
        sentence (``errors.Wrap(err, errInvalidDeployment.Error())``,
        cloud/deployment/deployment.go), so "not found" alone proves nothing."""
        try:
            return self.list_deployments(workspace)
        except CliError as exc:
            raise CliError(f"{NOT_IN_WORKSPACE}: {exc}") from exc

    def get_deployment(self, deployment_id: str) -> dict:
        """GetDeploymentByID."""
        return self.api("GET", f"/v1/organizations/{self.organization}/deployments/{deployment_id}")


def api_error_message(status: int, payload: object) -> str:
    """astro-cli NormalizeAPIError: the body's message, else a generic line."""
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"]
    return f"failed to perform request, status {status}"


def deployment_named(deployments: list[dict], name: str) -> dict:
    """astro-cli's lookup by ``--deployment-name``: the first of that name (saying so when
    there are several), else the not-found refusal."""
    matches = [d for d in deployments if d["name"] == name]
    if len(matches) > 1:
        out(f"More than one Deployment with the name {name} was found")
    if not matches:
        out(f"No Deployment with the name {name} was found")
        raise CliError(NOT_IN_WORKSPACE)
    return matches[0]


def select_deployment(deployments: list[dict], message: str, clean: bool = False) -> dict | None:
    """astro-cli SelectDeployment, never reading stdin (a fleet run has no one to answer).

    One Deployment and an API token: auto-selected with the notice. Several: the
    picker table is printed, the prompt gets no answer, and the selection fails
    with ``invalid Deployment selected`` exactly as with an empty stdin.
    """
    if not deployments:
        return None
    if len(deployments) == 1:
        if not clean:
            dep = deployments[0]
            out(
                "Only one Deployment was found. Using the following Deployment by default: \n"
                f"\n Deployment Name: {dep['name']}\n Deployment ID: {dep['id']}\n"
            )
        return deployments[0]
    out(message)
    ordered = sorted(deployments, key=lambda d: d.get("createdAt", ""))
    rows = [
        [str(i + 1), d["name"], d.get("namespace", ""), d["id"], _bool(d.get("isDagDeployEnabled"))]
        for i, d in enumerate(ordered)
    ]
    sys.stdout.write(
        go_table(
            ["#", "DEPLOYMENT NAME", "RELEASE NAME", "DEPLOYMENT ID", "DAG DEPLOY ENABLED"], rows
        )
    )
    out("\n> ", end="")
    raise CliError("invalid Deployment selected")


def _bool(value: object) -> str:
    return "true" if value else "false"
