"""What ``discover`` proposes for the inventory, decided from what Astro reports (pure).

Every Deployment Astro lists, with the git metadata of its latest deploy that has some,
becomes an inventory entry under the repo it was deployed from: Deployments deployed
from the same repository (and the same project directory in it) share one repo entry.
A Deployment whose deploys carry no git metadata is *unmapped*: nothing says which repo
builds it, so it is listed for a person to place. The repo is its checkout found on this
machine (matched by ``origin``, written as ``path``), else the deploy's remote (written as
``url``: the tool clones and keeps it, so a CI runner with nothing but the fleet repo can
run it). Waves are suggestions from the name's suffix: ``-dev`` the first wave,
``-stg``/``-staging`` the second, ``-prod``/``-production`` the last; anything else the
last (the most careful).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from upgrade.controlplane.deploy_record import DeployGit
from upgrade.controlplane.deployment import DeploymentInfo

_SUFFIXES = ((re.compile(r"[-_](dev|development)$", re.I), 0),
             (re.compile(r"[-_](stg|stage|staging)$", re.I), 1),
             (re.compile(r"[-_](prod|prd|production)$", re.I), -1))
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Found:
    """One Deployment as Astro reports it, and the git of its latest deploy that has some."""

    info: DeploymentInfo
    git: DeployGit | None = None
    deployed_at: datetime | None = None


@dataclass(frozen=True)
class DiscoveredDeployment:
    """A Deployment as the inventory will list it, and what Astro said about it."""

    id: str
    name: str
    workspace_id: str
    runtime: str
    ci_cd_enforced: bool
    wave: int
    wave_reason: str  # "suggested by the -dev suffix", ...
    commit: str = ""
    branch: str = ""

    def note(self) -> str:
        """The end-of-line comment written beside it in the inventory."""
        enforced = "; CI/CD enforced" if self.ci_cd_enforced else ""
        return f"Runtime {self.runtime or '?'}{enforced}; wave {self.wave_reason}"

    def to_json(self) -> dict[str, Any]:
        """As ``discover --json`` prints it."""
        return {"id": self.id, "name": self.name, "workspace_id": self.workspace_id,
                "runtime": self.runtime or None, "ci_cd_enforced": self.ci_cd_enforced,
                "wave": self.wave, "wave_reason": self.wave_reason,
                "commit": self.commit or None, "branch": self.branch or None}


@dataclass(frozen=True)
class DiscoveredRepo:
    """One repo entry: a repository (and project directory in it) and its Deployments."""

    name: str
    repository: str  # github.com/acme/dags, or the normalised remote
    clone_url: str
    project_dir: str  # the Astro project's directory in the repo ('' at its root)
    checkout: str | None  # the local checkout found, absolute; None when not found
    deployments: tuple[DiscoveredDeployment, ...]
    clone_dir: str = ""  # where to clone it when there is no checkout: repos/<clone_dir>

    @property
    def clone_to(self) -> str:
        """Where to clone it when there is no checkout, relative to the inventory."""
        return f"repos/{self.clone_dir or self.name}"

    def path(self, inventory_dir: str) -> str:
        """``path:`` for the inventory: the checkout (relative to it), else where to clone
        it (``repos/<name>``; the projects of one repository share one clone)."""
        base = (os.path.relpath(self.checkout, inventory_dir) if self.checkout
                else self.clone_to)
        return f"{base}/{self.project_dir}" if self.project_dir else base

    def source(self, inventory_dir: str) -> dict[str, str]:
        """How the inventory names the repo: ``path`` (its checkout here), else ``url`` (the
        deploy's remote, without credentials) and ``directory`` (the project in it)."""
        if self.checkout:
            return {"path": self.path(inventory_dir)}
        return {"url": self.clone_url, **({"directory": self.project_dir}
                                          if self.project_dir else {})}

    def to_json(self, inventory_dir: str) -> dict[str, Any]:
        """As ``discover --json`` prints it."""
        return {"name": self.name, "repository": self.repository, "clone_url": self.clone_url,
                "project_dir": self.project_dir or None, "checkout": self.checkout,
                "path": self.path(inventory_dir),
                "url": None if self.checkout else self.clone_url,
                "deployments": [d.to_json() for d in self.deployments]}


@dataclass(frozen=True)
class Discovery:
    """Everything ``discover`` found, grouped for the inventory."""

    repos: tuple[DiscoveredRepo, ...]
    unmapped: tuple[DiscoveredDeployment, ...]
    workspaces: tuple[str, ...]
    waves: tuple[int, ...] = field(default=(1, 2, 3))
    # checkout directory -> why the astro CLI deploys it without git metadata (their
    # Deployments cannot be mapped to a repo)
    blind: Mapping[str, str] = field(default_factory=dict)

    @property
    def deployments(self) -> int:
        """How many Deployments Astro listed."""
        return sum(len(r.deployments) for r in self.repos) + len(self.unmapped)

    def missing_checkouts(self) -> list[DiscoveredRepo]:
        """Repos with no checkout found on this machine (written by url)."""
        return [r for r in self.repos if r.checkout is None]

    def to_json(self, inventory_dir: str) -> dict[str, Any]:
        """The ``discover --json`` document (docs/schemas/discover.schema.json)."""
        return {"workspaces": list(self.workspaces),
                "summary": {"deployments": self.deployments, "repos": len(self.repos),
                            "unmapped": len(self.unmapped),
                            "missing_checkouts": len(self.missing_checkouts())},
                "repos": [r.to_json(inventory_dir) for r in self.repos],
                "unmapped": [d.to_json() for d in self.unmapped]}


def suggest_wave(name: str, waves: Sequence[int]) -> tuple[int, str]:
    """The wave a Deployment's name suggests among ``waves`` (ascending), and why."""
    ordered = sorted(waves) or [1]
    for pattern, position in _SUFFIXES:
        m = pattern.search(name)
        if m:
            index = min(position, len(ordered) - 1) if position >= 0 else -1
            return ordered[index], f"suggested by the -{m.group(1).lower()} suffix"
    return ordered[-1], "suggested: no -dev/-stg/-prod suffix, so the last wave"


def discover(found: Sequence[Found], checkouts: Mapping[str, str],
             waves: Sequence[int] = (1, 2, 3)) -> Discovery:
    """Group ``found`` into repo entries; ``checkouts`` maps a repository to its checkout."""
    groups: dict[tuple[str, str], list[Found]] = {}
    unmapped: list[DiscoveredDeployment] = []
    for item in sorted(found, key=lambda f: (f.info.name, f.info.id)):
        if item.git is None:
            unmapped.append(_entry(item, waves))
        else:
            groups.setdefault((item.git.repository, item.git.path), []).append(item)
    names = _names(list(groups))
    clones = _names(sorted({(key[0], "") for key in groups}))
    repos = []
    for key, items in sorted(groups.items(), key=lambda kv: names[kv[0]]):
        git = items[0].git
        assert git is not None
        repos.append(DiscoveredRepo(
            name=names[key], repository=key[0], clone_url=git.clone_url, project_dir=key[1],
            checkout=checkouts.get(key[0]),
            deployments=tuple(_entry(i, waves) for i in items), clone_dir=clones[(key[0], "")]))
    workspaces = sorted({f.info.workspace_id for f in found})
    return Discovery(tuple(repos), tuple(unmapped), tuple(workspaces), tuple(sorted(waves)))


def _entry(item: Found, waves: Sequence[int]) -> DiscoveredDeployment:
    wave, reason = suggest_wave(item.info.name, waves)
    info = item.info
    return DiscoveredDeployment(
        id=info.id, name=info.name, workspace_id=info.workspace_id,
        runtime=info.runtime_version, ci_cd_enforced=info.ci_cd_enforcement, wave=wave,
        wave_reason=reason, commit=item.git.commit_sha if item.git else "",
        branch=item.git.branch if item.git else "")


def _names(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A unique, readable name per (repository, project dir): ``dags``, ``acme-dags``, ..."""
    def base(key: tuple[str, str], depth: int) -> str:
        parts = [p for p in key[0].split("/") if p][-depth:]
        if key[1]:
            parts.append(key[1].replace("/", "-"))
        return _NAME.sub("-", "-".join(parts)).strip("-") or "repo"

    names: dict[tuple[str, str], str] = {}
    for depth in (1, 2, 3):
        pending = [k for k in keys if k not in names]
        proposed = {k: base(k, depth) for k in pending}
        taken = set(names.values())
        for key, name in proposed.items():
            clash = list(proposed.values()).count(name) > 1 or name in taken
            if not clash or depth == 3:
                names[key] = name if not clash else f"{name}-{len(names) + 1}"
    return names
