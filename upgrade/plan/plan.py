"""The plan: for each selected Deployment, from → to, action, reason, and each repo's diff.

Plain data, made by ``upgrade.plan.planner`` from facts and then narrowed by the preflight
(:meth:`Plan.with_preflight`): a repo that cannot be rewritten, an Airflow 3 migration with
lint findings, a wave the gate would refuse. Actions:

* ``upgrade`` / ``migrate`` (Airflow 2 → 3): the Dockerfile is rewritten and deployed;
* ``noop``: already at its target (it is still verified in a wave);
* ``not_targeted``: its Runtime line has no target; shown, never refused;
* ``refuse``: the policy or the input says no (the reason says which and why);
* ``blocked``: the preflight says a run would fail now (the reason says what to fix).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any, Literal

from upgrade.config.inventory import Deployment
from upgrade.errors import InputError, PlanRefused, ServiceError, UpgradeError
from upgrade.model.catalog import Resolution
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.facts import Finding

# policy: the rules say no; input: a file, a repo or the inventory is wrong; unreachable: a
# system (the repo's runner) could not be reached.
RefusalKind = Literal["policy", "input", "unreachable"]
Action = Literal["upgrade", "migrate", "noop", "not_targeted", "refuse", "blocked"]
ACTIONS: tuple[Action, ...] = ("upgrade", "migrate", "noop", "not_targeted", "refuse", "blocked")
CHANGING = ("upgrade", "migrate")  # actions that rewrite and deploy
RUNNING = (*CHANGING, "noop")  # actions a wave works on


@dataclass(frozen=True)
class PlanOptions:
    """Knobs that change decisions, not facts."""

    today: date
    adopt: bool = False  # overwrite hand-edited template-managed Dockerfiles


@dataclass(frozen=True)
class RepoChange:
    """One repo's Dockerfile change, shared by all its Deployments in the plan."""

    repo: str
    dockerfile: str  # display path, relative to the inventory
    current: RuntimeVersion | None
    old_text: str | None
    new_text: str | None  # None when nothing is to be written
    error: str | None = None
    blocked: RefusalKind | None = None  # the error stops a run from starting (see RepoFile)
    target: RuntimeVersion | None = None  # what new_text pins
    line: int | None = None  # the 1-based line that writes ``current`` (the FROM or its ARG)
    in_repo: str = "Dockerfile"  # its path inside the repo (what diffs and commits name)

    @property
    def changes(self) -> bool:
        """True when the Dockerfile would be rewritten."""
        return self.new_text is not None and self.new_text != self.old_text

    def diff(self) -> str:
        """Unified diff of the rewrite ('' when nothing changes)."""
        return self._diff

    @cached_property
    def _diff(self) -> str:
        # Worked out once per repo, not once per Deployment showing it: Deployments share
        # repos, and difflib was 5% of the time of a plan of 10,000 Deployments.
        if not self.changes:
            return ""
        assert self.old_text is not None and self.new_text is not None
        return dockerfile_diff(self.old_text, self.new_text, self.in_repo)


def dockerfile_diff(old: str, new: str, path: str) -> str:
    """Unified diff of a Dockerfile rewrite, headed as git heads it (``a/<path in the
    repo>``): the same on every machine, so it can be shared (plan, PR bodies, reports)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True), f"a/{path}", f"b/{path}"))


@dataclass(frozen=True)
class PlannedDeployment:
    """The decision for one Deployment."""

    deployment: Deployment
    repo: RepoChange
    target: RuntimeVersion | None  # None when not targeted (or its target did not resolve)
    action: Action
    reason: str
    current: RuntimeVersion | None = None
    deployed: RuntimeVersion | None = None
    refusal: RefusalKind | None = None
    warnings: tuple[str, ...] = ()
    spec: str | None = None  # the target spec that applied
    line: str | None = None  # airflow2 | airflow3: the line it is on now

    def to_json(self) -> dict[str, Any]:
        """One object of the documented ``plan --json`` schema."""
        return {
            "deployment": self.deployment.name,
            "deployment_id": self.deployment.id,
            "workspace_id": self.deployment.workspace_id,
            "repo": self.repo.repo,
            "wave": self.deployment.wave,
            "dockerfile": self.repo.dockerfile,
            "line": self.line,
            "current": _s(self.current),
            "deployed": _s(self.deployed),
            "dockerfile_version": _s(self.repo.current),
            "target_spec": self.spec,
            "target": _s(self.target),
            "action": self.action,
            "reason": self.reason,
            "refusal": self.refusal,
            "warnings": list(self.warnings),
            "diff": self.repo.diff() if self.action in CHANGING else "",
        }


@dataclass(frozen=True)
class Preflight:
    """What a run would check first, found before it: applied with Plan.with_preflight."""

    # repo -> (why it cannot be written, "input" or "unreachable")
    repos: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # repo -> its Airflow 3 migration findings, or why the lint could not run
    findings: Mapping[str, tuple[Finding, ...] | str] = field(default_factory=dict)
    deployments: Mapping[str, str] = field(default_factory=dict)  # id -> bad verify settings
    gate: tuple[str, ...] = ()  # why the gate would refuse the wave
    accept_findings: bool = False  # --accept-migration-findings


@dataclass(frozen=True)
class Plan:
    """The whole plan: every target spec resolved, one decision per Deployment, repo changes."""

    targets: Mapping[str, Resolution]  # spec -> its resolution (pinned by a rollout)
    deployments: tuple[PlannedDeployment, ...]
    repos: Mapping[str, RepoChange] = field(default_factory=dict)
    findings: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)
    options: PlanOptions | None = None  # what it was decided with (a pre-flight re-derives)
    # How to go on when it is refused for a reason beyond any one Deployment (a release the
    # active rollout pinned has been yanked since): said by every command that refuses it.
    advice: str | None = None

    def counts(self) -> Counter[str]:
        """How many Deployments per action."""
        return Counter(p.action for p in self.deployments)

    def summary(self) -> str:
        """One line: '12 to upgrade, 2 to migrate, 3 already at their target, 1 refused'."""
        c = self.counts()
        parts = [f"{c['upgrade']} to upgrade"]
        if c["migrate"]:
            parts.append(f"{c['migrate']} to migrate to Airflow 3")
        parts.append(f"{c['noop']} already at their target")
        if c["not_targeted"]:
            parts.append(f"{c['not_targeted']} not targeted")
        parts.append(f"{c['refuse']} refused")
        if c["blocked"]:
            parts.append(f"{c['blocked']} blocked")
        return ", ".join(parts)

    def pending(self) -> bool:
        """True when running it would change something (a Deployment to upgrade or migrate)."""
        return any(p.action in CHANGING for p in self.deployments)

    def error(self) -> UpgradeError | None:
        """Why this plan cannot be carried out as a whole, or None.

        An unreachable runner is a ServiceError (7), bad input an InputError (2), a policy
        refusal PlanRefused (3), in that order of precedence; each names the Deployments.
        Not-targeted Deployments are no error.
        """
        stopped = [p for p in self.deployments if p.action in ("refuse", "blocked")]
        for kind, error in (("unreachable", ServiceError), ("input", InputError),
                            ("policy", PlanRefused)):
            names = [p.deployment.name for p in stopped if p.refusal == kind]
            if names:
                shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more"
                                                 if len(names) > 10 else "")
                out = " ".join(f"--limit '!{p.deployment.name}'" for p in stopped[:20])
                return error(f"{len(names)} Deployment(s) refused or blocked ({kind}): "
                             f"{shown}. Each reason is in the plan above."
                             + (f"\n{self.advice}" if self.advice else "")
                             + f"\nFix them, or leave them out ({out}).")
        return None

    def changed_repos(self) -> list[RepoChange]:
        """Repos whose Dockerfile the plan rewrites, for at least one Deployment changing."""
        changing = {p.repo.repo for p in self.deployments if p.action in CHANGING}
        return [r for name, r in self.repos.items() if name in changing and r.changes]

    def deploying_repos(self) -> list[str]:
        """Repos with at least one Deployment to upgrade or migrate (deployed from them)."""
        return list(dict.fromkeys(p.repo.repo for p in self.deployments
                                  if p.action in CHANGING))

    def migrating_repos(self) -> list[str]:
        """Repos with at least one Deployment migrating to Airflow 3."""
        return list(dict.fromkeys(p.repo.repo for p in self.deployments
                                  if p.action == "migrate"))

    def only(self, ids: Collection[str]) -> Plan:
        """This plan narrowed to the Deployments with these ids (``--limit``)."""
        return replace(self, deployments=tuple(
            p for p in self.deployments if p.deployment.id in ids))

    def with_preflight(self, found: Preflight) -> Plan:
        """This plan with the Deployments a run could not carry out now marked ``blocked``."""
        planned = []
        for p in self.deployments:
            why, kind = _blocked(p, found)
            planned.append(p if why is None else replace(
                p, action="blocked", reason=why, refusal=kind))
        findings = {repo: lint for repo, lint in found.findings.items()
                    if not isinstance(lint, str)}
        return replace(self, deployments=tuple(planned), findings={**self.findings, **findings})

    def to_json(self) -> dict[str, Any]:
        """The documented ``plan --json`` document."""
        c = self.counts()
        return {
            "targets": {
                spec: {"version": str(r.version), "warnings": list(r.warnings)}
                for spec, r in self.targets.items()
            },
            "summary": {action: c[action] for action in ACTIONS},
            "findings": {repo: [str(f) for f in found] for repo, found in self.findings.items()},
            "deployments": [p.to_json() for p in self.deployments],
        }


def _blocked(p: PlannedDeployment, found: Preflight) -> tuple[str | None, RefusalKind | None]:
    """Why a run would stop on ``p`` now (and of what kind), or (None, None)."""
    if p.action not in RUNNING:
        return None, None
    # What the run could not get past (a runner, the repo, the settings) comes before the
    # gate, as in the run: the more urgent exit code is the one every command gives.
    repo = p.repo.repo
    if p.action in CHANGING and repo in found.repos:
        why, kind = found.repos[repo]
        return why, kind  # type: ignore[return-value]
    if p.deployment.id in found.deployments:
        return found.deployments[p.deployment.id], "input"
    lint = found.findings.get(repo) if p.action == "migrate" else None
    if isinstance(lint, str):
        return lint, "input"
    if found.gate:
        return "the gate refuses this wave: " + "; ".join(found.gate), "policy"
    if lint and not found.accept_findings:
        return (f"{len(lint)} Airflow 3 migration finding(s) in {repo}'s DAGs (ruff AIR3; "
                "each is listed). Fix them, or accept them with --accept-migration-findings "
                "(recorded in the journal)."), "policy"
    return None, None


def unique_targets(deployments: Iterable[PlannedDeployment]) -> list[RuntimeVersion]:
    """The distinct target versions of ``deployments``, newest first."""
    return sorted({p.target for p in deployments if p.target is not None}, reverse=True)


def _s(v: RuntimeVersion | None) -> str | None:
    return None if v is None else str(v)
