"""Gather the facts a plan decides from: Dockerfile texts, what Astro has deployed, each
changed repo's git state (and its forge's access, in pull-request mode), and the Airflow 3
migration lint of each migrating repo.

This is the impure half of planning: it reads repos through their host and asks the
control plane, then hands plain data (the fact types below) to ``upgrade.plan.plan``.
"""

from __future__ import annotations

import json
import posixpath
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.errors import RepoError, RepoNotClean, RunnerUnreachable, UpgradeError
from upgrade.hosts import git
from upgrade.hosts.host import Host, LocalHost, write_leftover
from upgrade.model.versions import RuntimeVersion, try_parse_version

if TYPE_CHECKING:
    from upgrade.controlplane.deployment import DeploymentSummary

# Listing a workspace is one `astro deployment list` process; a few at once is plenty.
LIST_WORKERS = 8

# ruff installed beside this interpreter (the project's own dependency), for local repos.
RUFF_BESIDE = str(Path(sys.executable).parent / "ruff") if (
    Path(sys.executable).parent / "ruff").exists() else ""
LINT_ARGS = ("check", "--select", "AIR3", "--output-format", "json", "--no-cache",
             "--isolated", "--exit-zero")
LINT_TIMEOUT = 300.0


@dataclass(frozen=True)
class RepoFile:
    """What fact gathering read from one repo: its Dockerfile text, or why it could not."""

    text: str | None
    error: str | None = None
    # Why a run could not even start on it: "unreachable" (its runner) or "input" (the repo
    # is not where the inventory says); None for a file that is there but wrong.
    blocked: str | None = None
    line: int | None = None  # where in the file the error is, when it is at one line
    # The inventory's ``path``/``dockerfile`` of the repo is what is wrong: the message is
    # located at the repo's entry in the inventory, not in a file that is not there.
    in_inventory: bool = False


@dataclass(frozen=True)
class DeployedFact:
    """What the control plane says one Deployment runs; ``error`` when it could not say."""

    version: RuntimeVersion | None
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Finding:
    """One Airflow 3 migration finding of ruff's AIR3 rules in a repo's DAGs."""

    code: str  # AIR301, AIR302, AIR311, AIR312
    message: str
    file: str  # relative to the repo
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {self.message}"


class FileReader(Protocol):
    """What reading a repo's Dockerfile asks of its runner (a Host, or a test's stand-in)."""

    def read_text(self, path: str) -> str: ...
    def exists(self, path: str) -> bool: ...


class DeploymentLister(Protocol):
    """What reading the deployed versions asks of Astro (the control plane, or a stand-in)."""

    def list(self, workspace_id: str) -> Sequence[DeploymentSummary]: ...


def read_dockerfiles(
    inventory: Inventory, deployments: Iterable[Deployment],
    host_for: Callable[[Repo], FileReader],
) -> dict[str, RepoFile]:
    """Each selected repo's Dockerfile text (exact bytes, CRLF kept), or why it can't be read."""
    return {name: _read(inventory.repos[name], host_for)
            for name in dict.fromkeys(d.repo for d in deployments)}


def _read(repo: Repo, host_for: Callable[[Repo], FileReader]) -> RepoFile:
    host = host_for(repo)
    try:
        try:
            return RepoFile(host.read_text(str(repo.path / repo.dockerfile)))
        except FileNotFoundError:
            if host.exists(str(repo.path)):
                return RepoFile(None, f"{repo.dockerfile_path} does not exist. Point 'path' at "
                                "the Astro project's checkout, or set 'dockerfile' to its "
                                "Dockerfile (relative to 'path').", in_inventory=True)
            return RepoFile(None, f"its path {repo.path} does not exist on runner "
                            f"{repo.runner}. Clone the repo there, or fix its 'path' in the "
                            "inventory.", blocked="input", in_inventory=True)
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            return RepoFile(None, f"byte {exc.object[exc.start]:#04x} is not UTF-8; this tool "
                            "rewrites only a Dockerfile it can read exactly as UTF-8 text. Save "
                            "the file as UTF-8, then run again.", line=line)
        except OSError as exc:
            return RepoFile(None, f"cannot be read ({exc})")
    except RunnerUnreachable as exc:
        return RepoFile(None, str(exc), blocked="unreachable")


def deployed_versions(
    control_plane: DeploymentLister, deployments: Iterable[Deployment]
) -> dict[str, DeployedFact]:
    """What Astro reports deployed, one `deployment list` per workspace (not per Deployment)."""
    by_workspace: dict[str, list[Deployment]] = defaultdict(list)
    for dep in deployments:
        by_workspace[dep.workspace_id].append(dep)
    with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, max(1, len(by_workspace)))) as pool:
        listed = dict(zip(by_workspace, pool.map(control_plane.list, by_workspace), strict=True))
    facts: dict[str, DeployedFact] = {}
    for workspace, members in by_workspace.items():
        known = {s.id: s for s in listed[workspace]}
        for dep in members:
            summary = known.get(dep.id)
            if summary is None:
                facts[dep.id] = DeployedFact(
                    None,
                    error=(
                        f"Astro has no Deployment {dep.id} in workspace {workspace}: check "
                        f"'id' and 'workspace_id' of {dep.name} in the inventory."
                    ),
                )
                continue
            version = try_parse_version(summary.runtime_version)
            facts[dep.id] = DeployedFact(
                version,
                error=None
                if version or not summary.runtime_version
                else (
                    f"Astro reports Runtime '{summary.runtime_version}' for {dep.name}, "
                    "which is not a version this tool can compare; refusing to plan blind."
                ),
            )
    return facts


def org_airflow3_versions(facts: Mapping[str, DeployedFact]) -> frozenset:
    """Airflow 3 versions already running in the fleet (Astronomer accepts those as targets)."""
    return frozenset(
        f.version for f in facts.values() if f.version is not None and f.version.scheme == "af3"
    )


def repo_problems(
    inventory: Inventory,
    repos: Iterable[str],
    host_for: Callable[[Repo], Host],
    planned: Callable[[Repo, str], str | None] = lambda repo, text: None,
) -> dict[str, tuple[str, str]]:
    """Why each of ``repos`` cannot be deployed from now (uncommitted changes, a merge or
    rebase in progress, not a repository: "input"; its runner went away: "unreachable"),
    as the render step would refuse it; clean repos are left out.

    A killed run's own work does not count: its temp file, and the Dockerfile when it is the
    only change and holds exactly what ``planned`` (the rewrite a run makes of a Dockerfile
    text) gives for the committed one.
    """
    problems: dict[str, tuple[str, str]] = {}
    for name in repos:
        repo = inventory.repos[name]
        try:
            interrupted_write(host_for(repo), repo, planned)
        except RepoError as exc:
            problems[name] = (str(exc), "input")
        except RunnerUnreachable as exc:
            problems[name] = (str(exc), "unreachable")
    return problems


def forge_problems(
    inventory: Inventory, repos: Iterable[str], host_for: Callable[[Repo], Host]
) -> dict[str, tuple[str, str]]:
    """Why each pull-request repo of ``repos`` could not open its pull request: its forge
    token unset or refused, or the repo not visible to it ("unreachable": exit 7, like
    every system that refuses our credentials), or no forge project known ("input").

    One read of each repo through its forge's API, a few at a time, so a run finds a
    missing token before it writes anything rather than after pushing a branch.
    """
    # Imported here: httpx is needed only by commands that talk to a system.
    from upgrade.controlplane.forges import forge_for, project_of
    from upgrade.errors import ForgeError

    asked = [inventory.repos[name] for name in repos
             if inventory.repos[name].git.mode == "pull-request"]

    def one(repo: Repo) -> tuple[str, str] | None:
        try:
            with forge_for(repo.git, project_of(repo, host_for(repo))) as forge:
                forge.check_access()
        except RepoError as exc:
            return str(exc), "input"
        except (ForgeError, RunnerUnreachable) as exc:
            return str(exc), "unreachable"
        return None

    with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, max(1, len(asked)))) as pool:
        found = dict(zip((r.name for r in asked), pool.map(one, asked), strict=True))
    return {name: why for name, why in found.items() if why is not None}


def interrupted_write(
    host: Host, repo: Repo, planned: Callable[[Repo, str], str | None]
) -> git.RepoStatus:
    """``git.ensure_clean`` for a repo a run deploys from, allowing a killed run's own write
    (see :func:`repo_problems`); raises RepoNotClean for anything else. The status."""
    repo_dir = str(repo.path)
    found = git.ensure_clean(host, repo_dir, allow=(write_leftover(repo.dockerfile),
                                                    repo.dockerfile))
    mine = posixpath.normpath(found.prefix + repo.dockerfile)
    if any(mine in (change.path, change.orig_path) for change in found.changes):
        committed = git.committed_text(host, repo_dir, repo.dockerfile)
        if committed is None or planned(repo, committed) != _working_text(host, repo):
            raise RepoNotClean(
                f"{repo_dir} has uncommitted changes to {repo.dockerfile} that are not a "
                "killed run's rewrite. Commit, stash or discard them, then run again.")
    return found


def _working_text(host: Host, repo: Repo) -> str | None:
    try:
        return host.read_text(str(repo.dockerfile_path))
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def migration_findings(
    inventory: Inventory, repos: Iterable[str], host_for: Callable[[Repo], Host]
) -> dict[str, tuple[Finding, ...] | str]:
    """Ruff's Airflow 3 rules (AIR301, AIR302, AIR311, AIR312) over each repo's ``dags/``,
    run on the repo's runner: the findings, or why the lint could not run."""
    found: dict[str, tuple[Finding, ...] | str] = {}
    for name in repos:
        repo = inventory.repos[name]
        host = host_for(repo)
        ruff = RUFF_BESIDE if isinstance(host, LocalHost) and RUFF_BESIDE else "ruff"
        try:
            if not host.exists(str(repo.path / "dags")):
                found[name] = ()
                continue
            result = host.run([ruff, *LINT_ARGS, "dags"], cwd=str(repo.path),
                              timeout=LINT_TIMEOUT)
        except RunnerUnreachable as exc:
            found[name] = f"the Airflow 3 migration lint could not run: {exc}"
            continue
        if not result.ok:
            found[name] = (f"the Airflow 3 migration lint (ruff) could not run on runner "
                           f"{host.name} (exit {result.exit_code}: "
                           f"{(result.stderr or result.stdout).strip()[:200]}). Install ruff "
                           "there, or fix the repo's DAGs folder.")
            continue
        try:
            items = json.loads(result.stdout or "[]")
            found[name] = tuple(sorted((
                Finding(str(i["code"]), str(i["message"]),
                        posixpath.relpath(str(i["filename"]), str(repo.path)),
                        int(i["location"]["row"]))
                for i in items), key=lambda f: (f.file, f.line, f.code)))
        except (ValueError, KeyError, TypeError) as exc:
            found[name] = f"the Airflow 3 migration lint printed something unreadable ({exc})."
    return found



# What astro-cli attaches to a deploy, by release (astro-cli's history): git metadata from
# v1.40.0, for github.com remotes only; GENERIC metadata (any other host: GitLab, GitHub
# Enterprise, self-hosted) from v1.43.0. An older CLI deploys without the commit.
GITHUB_GIT_METADATA = (1, 40, 0)
GENERIC_GIT_METADATA = (1, 43, 0)


def cli_problems(
    inventory: Inventory,
    repos: Iterable[str],
    host_for: Callable[[Repo], Host],
    cli_version: Callable[[Host | None], tuple[int, int, int]],
) -> dict[str, tuple[str, str]]:
    """Why the astro CLI that would deploy each of ``repos`` cannot serve its git mode: a
    repo whose remote's default branch is the truth (``direct``, ``pull-request`` with
    ``deploy: cli``) must deploy with the commit attached, or verify-all and discover cannot
    follow the Deployment to its commit. ``cli_version(host)`` is ``astro version`` on the
    repo's runner (None: this machine), asked once per runner."""
    problems: dict[str, tuple[str, str]] = {}
    versions: dict[str, tuple[int, int, int] | tuple[str, str]] = {}
    for name in repos:
        repo = inventory.repos[name]
        if not repo.git.shared or repo.git.deploy != "cli":
            continue
        try:
            host = host_for(repo)
            url = git.remote_url(host, str(repo.path), repo.git.remote) or ""
        except RunnerUnreachable as exc:
            problems[name] = (str(exc), "unreachable")
            continue
        github = _remote_host(url) == "github.com"
        need = GITHUB_GIT_METADATA if github else GENERIC_GIT_METADATA
        key = host.name
        if key not in versions:
            try:
                versions[key] = cli_version(host)
            except RunnerUnreachable as exc:
                versions[key] = (str(exc), "unreachable")
            except UpgradeError as exc:
                versions[key] = (f"cannot tell the astro CLI's version on runner {host.name}: "
                                 f"{exc}", "input")
        found = versions[key]
        if isinstance(found[0], str):
            problems[name] = found  # type: ignore[assignment]
        elif found < need:
            kind = "github.com" if github else f"non-GitHub ({_remote_host(url) or url})"
            problems[name] = (
                f"the astro CLI on runner {host.name} is {'.'.join(map(str, found))}; "
                f"git.mode: {repo.git.mode} deploys must carry their commit, and astro-cli "
                f"attaches it for a {kind} remote only from "
                f"{'.'.join(map(str, need))} on (older releases deploy without it, so "
                "verify-all and discover cannot follow the Deployment). Upgrade the astro "
                "CLI there, or point control_plane.astro_bin at a newer one.", "input")
    return problems


def _remote_host(url: str) -> str:
    """The host of a git remote, URL or SCP form (as astro-cli parses it)."""
    if "://" in url:
        return (url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]).lower()
    if ":" in url and not url.startswith("/"):
        return url.split(":", 1)[0].rsplit("@", 1)[-1].lower()
    return ""
