"""Drift across the fleet, for ``invoke verify-all``: is every Deployment where it should be?

For each Deployment it compares what Astro reports (Runtime, status), what its repo's
Dockerfile pins, what the journal says it should have reached (its high-water mark),
and how its Airflow is doing (health, DAG import errors). Any difference is a *drift
kind*; any drift makes ``verify-all`` exit 5.

Reading a thousand Deployments quickly is the hard part. Versions come from one
``astro deployment list`` per workspace. Status and the Airflow API URL are not in that
list, and one ``astro deployment inspect`` process per Deployment costs tens of
milliseconds of CPU each, so they are read from Astro's platform API instead: one paged
``GET /organizations/{org}/deployments?workspaceIds=W`` per workspace (the same request
``astro deployment list`` makes, which keeps the fields the CLI drops), through the
control plane's ``PlatformReader`` (upgrade.platform). When that API cannot be used, each
Deployment falls back to ``inspect``. The Airflow calls then run in parallel threads over
one pooled HTTP client. docs/verification.md has the figures.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from upgrade.config.inventory import Deployment, Inventory
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import HEALTHY_STATES, DeploymentInfo, DeploymentSummary
from upgrade.controlplane.platform import PlatformReader
from upgrade.errors import (
    EXIT_OK,
    AirflowAPIError,
    AstroAuthError,
    AstroError,
    DriftFound,
    InputError,
    ServiceError,
)
from upgrade.journal.configured import existing_journal
from upgrade.model.dockerfile import find_base_image
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.plan.facts import RepoFile, read_dockerfiles
from upgrade.run.session import Session
from upgrade.run.verify.checks import DEFAULT_MAX_HEARTBEAT_AGE, assess_health
from upgrade.run.verify.gitdrift import (
    DEPLOYED_FROM_UNMERGED_COMMIT,
    PENDING_PULL_REQUEST,
    GitTruth,
    read_git_truth,
)

DEPLOYED_NE_DOCKERFILE = "deployed_ne_dockerfile"
DEPLOYED_BELOW_EXPECTED = "deployed_below_expected"
UNHEALTHY = "unhealthy"
UNKNOWN_DEPLOYMENT = "unknown_deployment"
UNREACHABLE = "unreachable"
DOCKERFILE_UNREADABLE = "dockerfile_unreadable"
DRIFT_KINDS = (DEPLOYED_NE_DOCKERFILE, DEPLOYED_BELOW_EXPECTED, UNHEALTHY, UNKNOWN_DEPLOYMENT,
               UNREACHABLE, DOCKERFILE_UNREADABLE, DEPLOYED_FROM_UNMERGED_COMMIT,
               PENDING_PULL_REQUEST)

SCHEMA = "astro-fleet-upgrade/verify-all"
SCHEMA_VERSION = 1
STATUS_SOURCES = ("auto", "platform", "inspect")
LIST_WORKERS = 8  # `astro deployment list` processes at once

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DriftRow:
    """One Deployment: what each source says, and the drift kinds found."""

    deployment: str  # its name in the inventory
    id: str
    workspace_id: str
    repo: str
    deployed: str | None  # Runtime Astro reports
    status: str | None  # Astro status: HEALTHY, UNHEALTHY, DEPLOYING, ...
    dockerfile: str | None  # Runtime the repo's Dockerfile pins
    expected: str | None  # the journal's high-water mark
    health: str  # Airflow health, one line
    import_errors: int | None  # DAG import errors now (None: not read)
    kinds: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    @property
    def drifted(self) -> bool:
        """True when any drift kind was found."""
        return bool(self.kinds)

    def to_json(self) -> dict[str, Any]:
        """The row as documented in docs/verification.md."""
        return {
            "deployment": self.deployment, "id": self.id, "workspace_id": self.workspace_id,
            "repo": self.repo, "deployed": self.deployed, "status": self.status,
            "dockerfile": self.dockerfile, "expected": self.expected, "health": self.health,
            "import_errors": self.import_errors, "drift": list(self.kinds),
            "messages": list(self.messages),
        }


@dataclass(frozen=True)
class DriftReport:
    """Every row of one ``verify-all`` run, and how it was read."""

    rows: tuple[DriftRow, ...]
    checked_at: datetime
    duration: float
    notes: tuple[str, ...] = field(default=())  # how statuses were read, fallbacks taken

    @property
    def drifted(self) -> list[DriftRow]:
        """The rows with at least one drift kind."""
        return [row for row in self.rows if row.drifted]

    def error(self) -> DriftFound | None:
        """DriftFound (5) when anything drifted, else None."""
        return DriftFound(self.summary()) if self.drifted else None

    @property
    def exit_code(self) -> int:
        """The exit code ``verify-all`` ends with (the JSON document carries it)."""
        error = self.error()
        return error.exit_code if error else EXIT_OK

    def by_kind(self) -> dict[str, int]:
        """How many Deployments show each drift kind (every kind listed, zeros included)."""
        counts = Counter(kind for row in self.rows for kind in row.kinds)
        return {kind: counts.get(kind, 0) for kind in DRIFT_KINDS}

    def summary(self) -> str:
        """One sentence: how many Deployments, how many drifted, of which kinds."""
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.by_kind().items() if n)
        head = f"{len(self.rows)} Deployment(s) checked in {self.duration:.1f} s"
        if not self.drifted:
            return f"{head}: no drift."
        return f"{head}: {len(self.drifted)} drifted ({kinds})."

    def to_json(self) -> dict[str, Any]:
        """The JSON document (schema in docs/verification.md)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "duration_seconds": round(self.duration, 3),
            "exit_code": self.exit_code,
            "summary": {
                "deployments": len(self.rows),
                "drifted": len(self.drifted),
                "by_kind": self.by_kind(),
            },
            "notes": list(self.notes),
            "deployments": [row.to_json() for row in self.rows],
        }


# ---------------------------------------------------------------------- the check


@dataclass
class _Workspace:
    """What was learnt about one workspace before the per-Deployment work."""

    listed: dict[str, DeploymentSummary] | None = None
    list_error: str | None = None
    list_auth: bool = False  # Astro refused the token
    infos: dict[str, DeploymentInfo] = field(default_factory=dict)


def check_fleet(
    cp: ControlPlane,
    inventory: Inventory,
    deployments: Iterable[Deployment],
    files: Mapping[str, RepoFile],
    expected: Mapping[str, RuntimeVersion],
    *,
    workers: int = 32,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    status_via: str = "auto",
    git: GitTruth | None = None,
) -> DriftReport:
    """Compare every selected Deployment's sources and report the drift.

    ``files`` is ``facts.read_dockerfiles`` (by repo name); ``expected`` maps Deployment
    ids to the journal's high-water marks. ``status_via``: ``auto`` (the control plane's
    platform API reader when it has one, falling back to ``inspect`` per workspace),
    ``platform`` (refused when no token allows it) or ``inspect``. ``git`` adds what the
    remotes and the journal say of repos in git modes (``gitdrift``).
    """
    if status_via not in STATUS_SOURCES:
        raise InputError(f"status_via must be one of {', '.join(STATUS_SOURCES)}, got "
                         f"{status_via!r}.")
    started, checked_at = time.monotonic(), datetime.now(UTC)
    deps = list(deployments)
    by_workspace: dict[str, list[Deployment]] = defaultdict(list)
    for dep in deps:
        by_workspace[dep.workspace_id].append(dep)
    pins = {name: _dockerfile_pin(inventory, name, files.get(name))
            for name in dict.fromkeys(d.repo for d in deps)}
    notes: list[str] = list(git.notes) if git is not None else []
    reader = cp.platform if status_via != "inspect" else None
    own = False  # the control plane's reader is shared: only a reader made here is closed
    if reader is None and status_via == "platform":
        # Asked for explicitly: even when control_plane.status_via says cli.
        reader, own = PlatformReader.for_config(cp.config), True
        if reader is None:
            raise InputError("status_via 'platform' needs an Astro API token in the "
                             "environment (and https, or an api_url on this machine).")
    try:
        workspaces = _read_workspaces(cp, reader, by_workspace, notes)
    finally:
        if own and reader is not None:
            reader.close()
    if reader is None and status_via == "auto" and deps:
        why = ("control_plane.status_via is cli" if cp.config.status_via == "cli"
               else "no API token for the platform API")
        notes.append(f"statuses read with one `astro deployment inspect` per Deployment "
                     f"({why}).")
    ctx = _Context(cp, workspaces, pins, expected, max_heartbeat_age, git or GitTruth())
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(deps) or 1))) as pool:
        rows = tuple(pool.map(ctx.row, deps))
    return DriftReport(rows, checked_at, time.monotonic() - started, tuple(notes))


def _read_workspaces(
    cp: ControlPlane, reader: PlatformReader | None,
    by_workspace: Mapping[str, list[Deployment]], notes: list[str],
) -> dict[str, _Workspace]:
    """One list per workspace (versions) and, with a reader, one platform read (statuses)."""
    found = {ws: _Workspace() for ws in by_workspace}

    def read(ws: str) -> None:
        state = found[ws]
        try:
            state.listed = {s.id: s for s in cp.list(ws)}
        except AstroError as exc:
            state.list_error = _first_line(str(exc))
            state.list_auth = isinstance(exc, AstroAuthError)
            return
        if reader is None:
            return
        try:
            state.infos = reader.workspace(ws)
        except AstroError as exc:
            notes.append(f"workspace {ws}: the platform API could not be read ({exc}); "
                         "statuses read with `astro deployment inspect` instead.")

    workers = max(1, min(LIST_WORKERS, len(found)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read, found))
    _refuse_when_astro_cannot_be_read(found)
    return found


def _refuse_when_astro_cannot_be_read(found: Mapping[str, _Workspace]) -> None:
    """Raise ServiceError (7) when no workspace could be listed or Astro refused the token:
    that says nothing about any Deployment, so no row may claim drift from it."""
    refused = [ws for ws, state in found.items() if state.list_auth]
    failed = [ws for ws, state in found.items() if state.list_error is not None]
    if not (refused or (failed and len(failed) == len(found))):
        return
    first = (found[(refused or failed)[0]].list_error or "").rstrip(".")
    raise ServiceError(
        f"verify-all checked nothing: Astro could not be read ({first}). Fix the network or "
        "the token ($ASTRO_API_TOKEN), then run again.")


def _dockerfile_pin(inventory: Inventory, repo_name: str, file: RepoFile | None
                    ) -> tuple[RuntimeVersion | None, str | None]:
    """The Runtime a repo's Dockerfile pins, or why it cannot be told."""
    repo = inventory.repos[repo_name]
    where = str(repo.path / repo.dockerfile)
    if file is None or file.text is None:
        reason = file.error if file is not None else "was not read"
        return None, f"{where}: {reason}"
    try:
        return find_base_image(file.text, path=where).version, None
    except InputError as exc:
        return None, str(exc)


class _Context:
    """Everything the per-Deployment work reads; shared by the worker threads."""

    def __init__(self, cp: ControlPlane, workspaces: Mapping[str, _Workspace],
                 pins: Mapping[str, tuple[RuntimeVersion | None, str | None]],
                 expected: Mapping[str, RuntimeVersion], max_heartbeat_age: float,
                 git: GitTruth):
        self.cp, self.workspaces, self.pins = cp, workspaces, pins
        self.expected, self.max_age, self.git = expected, max_heartbeat_age, git

    def row(self, dep: Deployment) -> DriftRow:
        kinds: list[str] = []
        messages: list[str] = []

        def drift(kind: str, message: str) -> None:
            if kind not in kinds:
                kinds.append(kind)
            messages.append(message)

        pin, pin_error = self.pins[dep.repo]
        if pin_error:
            drift(DOCKERFILE_UNREADABLE, f"Dockerfile: {pin_error}")
        for kind, message in self.git.drift.get(dep.id, ()):
            drift(kind, message)
        want = self.expected.get(dep.id)
        ws = self.workspaces[dep.workspace_id]
        summary = ws.listed.get(dep.id) if ws.listed is not None else None
        base = dict(deployment=dep.name, id=dep.id, workspace_id=dep.workspace_id,
                    repo=dep.repo, dockerfile=str(pin) if pin else None,
                    expected=str(want) if want else None)
        if ws.list_error is not None:
            drift(UNREACHABLE, f"Astro could not list workspace {dep.workspace_id}: "
                               f"{ws.list_error}")
            return DriftRow(**base, deployed=None, status=None, health="not checked",
                            import_errors=None, kinds=tuple(kinds), messages=tuple(messages))
        if summary is None:
            drift(UNKNOWN_DEPLOYMENT, f"Astro has no Deployment {dep.id} in workspace "
                                      f"{dep.workspace_id}; check 'id' and 'workspace_id' of "
                                      f"{dep.name} in the inventory.")
            return DriftRow(**base, deployed=None, status=None, health="not checked",
                            import_errors=None, kinds=tuple(kinds), messages=tuple(messages))
        deployed_text = summary.runtime_version or None
        deployed = try_parse_version(summary.runtime_version)
        if dep.id in self.git.in_flight and pin is not None and deployed is not None and \
                deployed < pin:
            messages.append(f"the active rollout has not deployed {pin} yet (Astro runs "
                            f"{deployed}): in flight, not drift.")
            pin = None
        self._versions(deployed_text, deployed, pin, want, drift)
        info = ws.infos.get(dep.id)
        if info is None:
            try:
                info = self.cp.inspect(dep.id, dep.workspace_id)
            except AstroError as exc:
                drift(UNREACHABLE, f"Astro could not be asked for its status: "
                                   f"{_first_line(str(exc))}")
                return DriftRow(**base, deployed=deployed_text, status=None,
                                health="not checked", import_errors=None,
                                kinds=tuple(kinds), messages=tuple(messages))
        status = info.status or None
        if info.status not in HEALTHY_STATES:
            what = " (a deploy in progress, or stuck)" if info.status == "DEPLOYING" else ""
            drift(UNHEALTHY, f"Astro reports status {info.status or 'none'}{what}.")
        health, errors = self._airflow(info, drift)
        return DriftRow(**base, deployed=deployed_text, status=status, health=health,
                        import_errors=errors, kinds=tuple(kinds), messages=tuple(messages))

    @staticmethod
    def _versions(text: str | None, deployed: RuntimeVersion | None,
                  pin: RuntimeVersion | None, want: RuntimeVersion | None, drift: Any) -> None:
        if pin is not None and text is not None and (
                deployed != pin if deployed is not None else text != str(pin)):
            drift(DEPLOYED_NE_DOCKERFILE, f"Astro runs {text} but the Dockerfile pins {pin}.")
        if want is not None and deployed is not None and deployed < want:
            drift(DEPLOYED_BELOW_EXPECTED, f"Astro runs {deployed}, below {want}, which the "
                                           "journal recorded as deployed.")

    def _airflow(self, info: DeploymentInfo, drift: Any) -> tuple[str, int | None]:
        """Airflow's health line and import error count (marking drift on the way)."""
        if info.status == "HIBERNATING":
            return "hibernating, not checked", None
        try:
            health = self.cp.airflow_health(info)
            problems, _ = assess_health(health, max_heartbeat_age=self.max_age)
            errors = len(self.cp.import_errors(info))
        except AirflowAPIError as exc:
            drift(UNREACHABLE, f"the Airflow API could not be asked: {_first_line(str(exc))}")
            return "unreachable", None
        if problems:
            drift(UNHEALTHY, "Airflow: " + "; ".join(problems) + ".")
            return "; ".join(problems), errors
        return "healthy", errors


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def verify_all(fleet: Session, limits: Sequence[str] = ()) -> DriftReport:
    """``verify-all``: every selected Deployment's sources compared, with the journal's marks."""
    inv = fleet.inventory
    deployments = fleet.select(None, limits)
    files = read_dockerfiles(inv, deployments, fleet.host_for)
    expected: dict[str, RuntimeVersion] = {}
    journal = existing_journal(inv.journal)
    if journal is not None:
        with journal:
            expected = journal.high_water()
            git = read_git_truth(fleet.control_plane, inv, deployments, fleet.host_for, journal)
    else:
        git = read_git_truth(fleet.control_plane, inv, deployments, fleet.host_for, None)
    files.update(git.files)  # repos in git modes: the remote's default branch is the truth
    return check_fleet(fleet.control_plane, inv, deployments, files, expected, git=git)
