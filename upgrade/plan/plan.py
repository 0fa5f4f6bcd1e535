"""The plan: for each selected Deployment, from → to, action, reason, and each repo's diff.

Pure: it takes the facts gathered beforehand (Dockerfile texts, deployed versions, the
journal's high-water marks) as plain data and decides; it touches no repo, host or API.
A new kind of fact is one more field of :class:`Facts`, not a rewrite.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.errors import (
    DockerfileError,
    InputError,
    PlanRefused,
    ServiceError,
    TemplateError,
    UpgradeError,
)
from upgrade.model.catalog import Catalog, Resolution
from upgrade.model.dockerfile import BaseImage, find_base_image, retarget
from upgrade.model.image import CANONICAL_REPOSITORY, ImageRef, parse_image
from upgrade.model.template import RuntimeContext, render_template, template_drift
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.policy import Facts, PolicyOptions, decide

# policy: the rules say no; input: a file or the inventory is wrong; unreachable: the
# repo's runner could not be reached, so the facts are missing (the wave fails it).
RefusalKind = Literal["policy", "input", "unreachable"]


@dataclass(frozen=True)
class RepoFile:
    """What fact gathering read from one repo: its Dockerfile text, or why it could not."""

    text: str | None
    error: str | None = None
    unreachable: bool = False  # the runner could not be reached (not a bad file)


@dataclass(frozen=True)
class DeployedFact:
    """What the control plane says one Deployment runs; ``error`` when it could not say."""

    version: RuntimeVersion | None
    status: str | None = None
    error: str | None = None


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
    unreachable: bool = False

    @property
    def changes(self) -> bool:
        """True when the Dockerfile would be rewritten."""
        return self.new_text is not None and self.new_text != self.old_text

    def diff(self) -> str:
        """Unified diff of the rewrite ('' when nothing changes)."""
        if not self.changes:
            return ""
        assert self.old_text is not None and self.new_text is not None
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                f"a/{self.dockerfile}",
                f"b/{self.dockerfile}",
            )
        )


@dataclass(frozen=True)
class PlannedDeployment:
    """The decision for one Deployment."""

    deployment: Deployment
    repo: RepoChange
    target: RuntimeVersion
    action: Literal["upgrade", "noop", "refuse"]
    reason: str
    current: RuntimeVersion | None = None
    deployed: RuntimeVersion | None = None
    refusal: RefusalKind | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """One object of the documented ``plan --json`` schema."""
        return {
            "deployment": self.deployment.name,
            "deployment_id": self.deployment.id,
            "workspace_id": self.deployment.workspace_id,
            "repo": self.repo.repo,
            "wave": self.deployment.wave,
            "dockerfile": self.repo.dockerfile,
            "current": _s(self.current),
            "deployed": _s(self.deployed),
            "dockerfile_version": _s(self.repo.current),
            "target": str(self.target),
            "action": self.action,
            "reason": self.reason,
            "refusal": self.refusal,
            "warnings": list(self.warnings),
            "diff": self.repo.diff(),
        }


@dataclass(frozen=True)
class Plan:
    """The whole plan: the resolved target, one decision per Deployment, repo changes."""

    resolution: Resolution
    deployments: tuple[PlannedDeployment, ...]
    repos: Mapping[str, RepoChange] = field(default_factory=dict)

    @property
    def target(self) -> RuntimeVersion:
        """The exact target version."""
        return self.resolution.version

    def counts(self) -> Counter[str]:
        """How many Deployments per action."""
        return Counter(p.action for p in self.deployments)

    def summary(self) -> str:
        """One line: '12 to upgrade, 2 already at 12.4.1, 1 refused'."""
        c = self.counts()
        return (
            f"{c['upgrade']} to upgrade, {c['noop']} already at {self.target}, "
            f"{c['refuse']} refused"
        )

    def error(self) -> UpgradeError | None:
        """Why this plan cannot be carried out as a whole, or None.

        An unreachable runner is a ServiceError (7), bad input an InputError (2), a policy
        refusal PlanRefused (3), in that order of precedence; each names the Deployments.
        """
        refused = [p for p in self.deployments if p.action == "refuse"]
        for kind, error in (("unreachable", ServiceError), ("input", InputError),
                            ("policy", PlanRefused)):
            names = [p.deployment.name for p in refused if p.refusal == kind]
            if names:
                shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more"
                                                 if len(names) > 10 else "")
                return error(f"{len(names)} Deployment(s) refused ({kind}): {shown}. "
                             "Each reason is in the plan above.")
        return None

    def changed_repos(self) -> list[RepoChange]:
        """Repos whose Dockerfile the plan rewrites, for at least one Deployment upgrading."""
        upgrading = {p.repo.repo for p in self.deployments if p.action == "upgrade"}
        return [r for name, r in self.repos.items() if name in upgrading and r.changes]

    def to_json(self) -> dict[str, Any]:
        """The documented ``plan --json`` document."""
        c = self.counts()
        return {
            "target": {
                "spec": str(self.resolution.spec),
                "version": str(self.target),
                "warnings": list(self.resolution.warnings),
            },
            "summary": {"upgrade": c["upgrade"], "noop": c["noop"], "refuse": c["refuse"]},
            "deployments": [p.to_json() for p in self.deployments],
        }


def build_plan(
    inventory: Inventory,
    selected: Iterable[Deployment],
    resolution: Resolution,
    catalog: Catalog,
    files: Mapping[str, RepoFile],
    deployed: Mapping[str, DeployedFact],
    high_water: Mapping[str, RuntimeVersion],
    options: PlanOptions,
    org_versions: frozenset[RuntimeVersion] = frozenset(),
) -> Plan:
    """Decide every selected Deployment from gathered facts; pure."""
    target = resolution.version
    selected = list(selected)
    repo_names = list(dict.fromkeys(d.repo for d in selected))
    repos = {
        name: _repo_change(
            inventory, inventory.repos[name], files.get(name), target, catalog, options
        )
        for name in repo_names
    }
    planned = []
    for dep in selected:
        change = repos[dep.repo]
        fact = deployed.get(dep.id, DeployedFact(None))
        if change.error is not None:
            kind: RefusalKind = "unreachable" if change.unreachable else "input"
            planned.append(
                PlannedDeployment(dep, change, target, "refuse", change.error, refusal=kind)
            )
            continue
        if fact.error is not None:
            planned.append(
                PlannedDeployment(
                    dep,
                    change,
                    target,
                    "refuse",
                    fact.error,
                    current=change.current,
                    refusal="input",
                )
            )
            continue
        facts = Facts(
            deployed=fact.version, dockerfile=change.current, high_water=high_water.get(dep.id)
        )
        decision = decide(facts, target, catalog, _policy_options(dep, options, org_versions))
        planned.append(
            PlannedDeployment(
                dep,
                change,
                target,
                decision.action,
                decision.reason,
                current=facts.current,
                deployed=fact.version,
                refusal="policy" if decision.action == "refuse" else None,
                warnings=decision.warnings,
            )
        )
    return Plan(resolution, tuple(planned), repos)


def _policy_options(
    dep: Deployment, options: PlanOptions, org_versions: frozenset[RuntimeVersion]
) -> PolicyOptions:
    return PolicyOptions(
        today=options.today,
        allow_airflow3=_truthy(dep.vars.get("allow_airflow3")),
        allow_end_of_maintenance=_truthy(dep.vars.get("allow_end_of_maintenance")),
        org_versions=org_versions,
    )


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


def _repo_change(
    inventory: Inventory,
    repo: Repo,
    file: RepoFile | None,
    target: RuntimeVersion,
    catalog: Catalog,
    options: PlanOptions,
) -> RepoChange:
    shown = _display_path(inventory, repo)
    if file is None or file.text is None:
        error = file.error if file is not None else "not read"
        if file is not None and file.unreachable:
            return RepoChange(repo.name, shown, None, None, None, error=error, unreachable=True)
        return RepoChange(repo.name, shown, None, None, None, error=f"{shown}: {error}")
    try:
        base = find_base_image(file.text, path=shown)
        if base.version > target:
            # The policy refuses each Deployment with the reason; nothing to write.
            return RepoChange(repo.name, shown, base.version, file.text, None)
        if repo.template is None:
            new_text = retarget(file.text, target, path=shown)
        else:
            new_text = _render_managed(
                inventory, repo, file.text, base, target, catalog, options, shown
            )
    except (DockerfileError, TemplateError) as exc:
        return RepoChange(repo.name, shown, None, file.text, None, error=str(exc))
    return RepoChange(repo.name, shown, base.version, file.text, new_text)


def _render_managed(
    inventory: Inventory,
    repo: Repo,
    text: str,
    base: BaseImage,
    target: RuntimeVersion,
    catalog: Catalog,
    options: PlanOptions,
    shown: str,
) -> str:
    assert repo.template is not None
    template = repo.template

    def render(version: RuntimeVersion) -> str:
        return render_template(
            inventory.templates.path,
            template.name,
            runtime=runtime_context(version, catalog, base.image),
            vars=dict(template.vars),
        )

    current = base.version
    drift = template_drift(text, render(current), path=shown)
    if drift and not options.adopt:
        raise DockerfileError(
            f"{shown}: hand-edited: it no longer matches what templates/{template.name} "
            f"renders at {current}. Move the edit into the template or its vars, or run with "
            f"--adopt to overwrite it.\n{drift}"
        )
    return render(target)


def runtime_context(
    version: RuntimeVersion, catalog: Catalog, current: ImageRef | None = None
) -> RuntimeContext:
    """What a template sees as ``runtime``: ``current``'s image (variants kept) at ``version``."""
    release = catalog.get(version)
    image = (
        current.retarget(version)
        if current is not None
        else parse_image(f"{CANONICAL_REPOSITORY[version.scheme]}:{version}")
    )
    return RuntimeContext.from_image(
        image,
        airflow=release.airflow if release else None,
        python=release.python if release else None,
    )


def _display_path(inventory: Inventory, repo: Repo) -> str:
    path = repo.path / repo.dockerfile
    try:
        return str(path.relative_to(inventory.root))
    except ValueError:
        return str(path)


def _s(v: RuntimeVersion | None) -> str | None:
    return None if v is None else str(v)
