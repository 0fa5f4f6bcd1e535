"""What the journal holds, as plain records: rollouts, waves, Deployments, events; who acted."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from upgrade.journal.states import RolloutStatus, WaveStatus
from upgrade.model.versions import RuntimeVersion, parse_version

Row = Mapping[str, Any]  # a database row, by column name


def os_user() -> str:
    """The login name of this process's user (a uid when there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an anonymous container uid
        return f"uid{os.getuid()}"


def actor() -> str:
    """``user@host`` of this process, as recorded on every event."""
    return whoami()


def whoami() -> str:
    """``actor()`` for scopes where a parameter named ``actor`` hides it."""
    return f"{os_user()}@{socket.gethostname()}"


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    """One rollout: a target pinned to an exact version, across all its waves.

    ``pins`` maps every target spec the rollout follows to the exact version it was pinned
    to; a rollout with one target (and every rollout from schema 1) has
    ``{target_spec: target_version}``. ``target_source`` says where its targets came from:
    ``inventory`` (the inventory's layers; ``target_spec`` is the top level's) or
    ``--target`` (that one spec for every Deployment), so later commands follow the same.
    """

    id: int
    target_spec: str
    target_version: RuntimeVersion
    inventory: str
    created_at: datetime
    created_by: str
    status: RolloutStatus
    finished_at: datetime | None
    finished_by: str | None
    finish_reason: str | None
    pins: Mapping[str, RuntimeVersion] = field(default_factory=dict)
    target_source: str = "inventory"

    def __post_init__(self) -> None:
        if not self.pins:  # one target: its spec is pinned to its version
            object.__setattr__(self, "pins", {self.target_spec: self.target_version})


@dataclass(frozen=True)
class Signoff:
    """Who approved (or skipped a gate for) a wave, when and why."""

    actor: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class WaveRecord:
    """One wave of a rollout and its gate bookkeeping."""

    rollout_id: int
    number: int
    status: WaveStatus
    started_at: datetime | None
    finished_at: datetime | None
    passed_at: datetime | None
    soak_seconds: int
    proceed_after: datetime | None  # passed_at + soak: the next wave may start from then
    halt_reason: str | None
    budget: Mapping[str, Any]
    approval: Signoff | None
    skip_gate: Signoff | None


@dataclass(frozen=True)
class DeploymentEntry:
    """A Deployment to register in a rollout (see ``Journal.ensure_deployments``)."""

    deployment_id: str
    name: str
    repo: str
    to_version: RuntimeVersion
    from_version: RuntimeVersion | None = None
    target_spec: str | None = None  # the target spec that applied to it, when it has its own


@dataclass(frozen=True)
class DeploymentRecord:
    """One Deployment's progress within a rollout."""

    rollout_id: int
    deployment_id: str
    name: str
    repo: str
    wave: int
    state: str
    from_version: RuntimeVersion | None
    to_version: RuntimeVersion
    error: str | None
    failed_from: str | None  # the state it was in when it failed
    attempts: int  # times it left ``pending`` to be worked on
    deploys: int  # deploys this rollout started for it
    baseline: Mapping[str, Any] | None
    started_at: datetime | None
    updated_at: datetime
    target_spec: str | None = None  # the target spec that applied to it (None: the rollout's)
    deployed_commit: str | None = None  # the commit its deploy was built from (git modes)


@dataclass(frozen=True)
class RepoChange:
    """How one repo's change reached its remote in a rollout (``git.mode`` direct or
    pull-request): each field is set once the remote or the forge confirmed it."""

    rollout_id: int
    repo: str
    mode: str
    branch: str | None = None  # what was pushed to: the default branch, or the PR's branch
    base_commit: str | None = None  # the default branch's commit the change was made on
    pushed_commit: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    merge_commit: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    """One line of the append-only audit trail."""

    seq: int
    at: datetime
    rollout_id: int | None
    wave: int | None
    deployment_id: str | None
    kind: str
    from_state: str | None
    to_state: str | None
    message: str | None
    actor: str
    data: Mapping[str, Any] | None


# -- to and from rows ---------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _json_default(value: object) -> object:
    if isinstance(value, RuntimeVersion | Path):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot store {type(value).__name__} in the journal")


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"), default=_json_default)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _version(text: str | None) -> RuntimeVersion | None:
    return None if text is None else parse_version(text)


def rollout_from_row(r: Row) -> Rollout:
    target = parse_version(r["target_version"])
    stored = _loads(r["pins"]) or {}  # NULL in rollouts from schema 1: one target
    pins = {spec: parse_version(v) for spec, v in stored.items()}
    return Rollout(r["id"], r["target_spec"], target, r["inventory"],
                   datetime.fromisoformat(r["created_at"]), r["created_by"], r["status"],
                   _when(r["finished_at"]), r["finished_by"], r["finish_reason"], pins,
                   r["target_source"] or "inventory")


def _signoff_of(r: Row, prefix: str, reason_col: str) -> Signoff | None:
    if r[f"{prefix}_by"] is None:
        return None
    return Signoff(r[f"{prefix}_by"], datetime.fromisoformat(r[f"{prefix}_at"]), r[reason_col])


def wave_from_row(r: Row) -> WaveRecord:
    return WaveRecord(
        r["rollout_id"], r["number"], r["status"], _when(r["started_at"]),
        _when(r["finished_at"]), _when(r["passed_at"]), r["soak_seconds"],
        _when(r["proceed_after"]), r["halt_reason"], _loads(r["budget"]) or {},
        _signoff_of(r, "approved", "approval_reason"),
        _signoff_of(r, "skip_gate", "skip_gate_reason"))


def deployment_from_row(r: Row) -> DeploymentRecord:
    return DeploymentRecord(
        r["rollout_id"], r["deployment_id"], r["name"], r["repo"], r["wave"], r["state"],
        _version(r["from_version"]), parse_version(r["to_version"]), r["error"],
        r["failed_from"], r["attempts"], r["deploys"], _loads(r["baseline"]),
        _when(r["started_at"]), datetime.fromisoformat(r["updated_at"]), r["target_spec"],
        r["deployed_commit"])


def repo_change_from_row(r: Row) -> RepoChange:
    return RepoChange(r["rollout_id"], r["repo"], r["mode"], r["branch"], r["base_commit"],
                      r["pushed_commit"], r["pr_number"], r["pr_url"], r["merge_commit"],
                      _when(r["updated_at"]))


def event_from_row(r: Row) -> Event:
    return Event(r["seq"], datetime.fromisoformat(r["at"]), r["rollout_id"], r["wave"],
                 r["deployment_id"], r["kind"], r["from_state"], r["to_state"], r["message"],
                 r["actor"], _loads(r["data"]))
