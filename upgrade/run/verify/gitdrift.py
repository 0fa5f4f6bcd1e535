"""What ``verify-all`` reads from git for repos in ``direct`` and ``pull-request`` modes.

The truth is the remote's default branch, not the working tree: each such repo is
fetched, and its Dockerfile is read from ``<remote>/<default>``. Two drift kinds come from
git and the journal:

* ``deployed_from_unmerged_commit``: Astro's newest deploy record with git metadata names a
  commit that is not on ``<remote>/<default>`` (deployed from a branch, or from local work);
* ``pending_pull_request``: the active rollout opened a PR for the repo, it is not merged,
  and the repo's Deployments in that rollout have not been deployed.

And one exemption: a rollout's own work in flight (a Dockerfile already at the target ahead
of a Deployment whose wave has not deployed yet) is not drift.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deploy_record import latest_with_git
from upgrade.errors import CommandFailed, InputError, ServiceError
from upgrade.hosts import git, git_history
from upgrade.hosts.host import Host
from upgrade.journal.states import NOT_YET_DEPLOYED, PENDING
from upgrade.journal.store import Journal
from upgrade.plan.facts import RepoFile

DEPLOYED_FROM_UNMERGED_COMMIT = "deployed_from_unmerged_commit"
PENDING_PULL_REQUEST = "pending_pull_request"


@dataclass
class GitTruth:
    """What git and the journal add to ``verify-all``."""

    files: dict[str, RepoFile] = field(default_factory=dict)  # repo -> Dockerfile on remote
    drift: dict[str, list[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(list))  # Deployment id -> (kind, message)
    in_flight: set[str] = field(default_factory=set)  # Deployment ids a rollout is moving
    notes: list[str] = field(default_factory=list)


def read_git_truth(cp: ControlPlane, inventory: Inventory, deployments: Iterable[Deployment],
                   host_for: Callable[[Repo], Host], journal: Journal | None) -> GitTruth:
    """Fetch each shared repo once; its Dockerfile on the default branch; the drift kinds."""
    truth = GitTruth()
    deps = list(deployments)
    shared = {d.repo for d in deps if inventory.repos[d.repo].git.shared}
    defaults: dict[str, str] = {}
    for name in sorted(shared):
        repo = inventory.repos[name]
        host, d, remote = host_for(repo), str(repo.path), repo.git.remote
        try:
            default = repo.git.default_branch or git.remote_head(host, d, remote)
            git.fetch(host, d, remote, default)
        except (ServiceError, InputError) as exc:
            truth.files[name] = RepoFile(None, f"cannot fetch {remote}: {_first(exc)}")
            continue
        defaults[name] = default
        text = git_history.text_at(host, d, f"refs/remotes/{remote}/{default}", repo.dockerfile)
        truth.files[name] = RepoFile(text) if text is not None else RepoFile(
            None, f"not on {remote}/{default}")
    if shared:
        truth.notes.append(f"Dockerfiles of {len(defaults)} repo(s) in git modes read from "
                           "their remote's default branch (fetched), not the working tree.")
    _unmerged(cp, inventory, deps, host_for, defaults, truth)
    if journal is not None:
        _rollout(journal, deps, truth)
    return truth


def _unmerged(cp: ControlPlane, inventory: Inventory, deps: list[Deployment],
              host_for: Callable[[Repo], Host], defaults: dict[str, str],
              truth: GitTruth) -> None:
    platform = cp.platform
    if platform is None:
        if defaults:
            truth.notes.append("deploy records not read (no platform API token): "
                               "deployed_from_unmerged_commit not checked.")
        return
    for dep in deps:
        if dep.repo not in defaults:
            continue
        repo = inventory.repos[dep.repo]
        host, d = host_for(repo), str(repo.path)
        tracking = f"refs/remotes/{repo.git.remote}/{defaults[dep.repo]}"
        try:
            latest = latest_with_git(platform.deploys(dep.id))
        except ServiceError as exc:
            truth.notes.append(f"{dep.name}: deploy records not read ({_first(exc)}).")
            continue
        if latest is None or latest.git is None:
            continue
        sha = latest.git.commit_sha
        try:
            on_branch = (git_history.rev(host, d, sha) is not None
                         and git_history.is_ancestor(host, d, sha, tracking))
        except CommandFailed:
            on_branch = False
        if not on_branch:
            where = f"{repo.git.remote}/{defaults[dep.repo]}"
            branch = f" (branch {latest.git.branch})" if latest.git.branch else ""
            truth.drift[dep.id].append((
                DEPLOYED_FROM_UNMERGED_COMMIT,
                f"Astro's latest deploy came from commit {sha[:12]}{branch}, which is not on "
                f"{where}."))


def _rollout(journal: Journal, deps: list[Deployment], truth: GitTruth) -> None:
    rollout = journal.active_rollout()
    if rollout is None:
        return
    states = {r.deployment_id: r.state for r in journal.deployments(rollout.id)}
    open_prs = {c.repo: c for c in journal.repo_changes(rollout.id)
                if c.pr_number is not None and c.merge_commit is None}
    for dep in deps:
        state = states.get(dep.id, PENDING)  # not registered yet: its wave has not started
        if state not in NOT_YET_DEPLOYED:
            continue
        truth.in_flight.add(dep.id)
        change = open_prs.get(dep.repo)
        if change is not None:
            truth.drift[dep.id].append((
                PENDING_PULL_REQUEST,
                f"PR #{change.pr_number} ({change.pr_url}) of rollout {rollout.id} is not "
                f"merged, and {dep.name} is {state} in it."))


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
