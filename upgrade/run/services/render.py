"""Write a plan's Dockerfile changes into the repos, optionally on a branch, committed, pushed.

For teams whose CI deploys on merge. Only the Dockerfile is ever written; a repo with
uncommitted changes or a merge/rebase in progress is refused before anything is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from upgrade.config.inventory import Inventory, Repo
from upgrade.hosts import git
from upgrade.hosts.host import Host
from upgrade.plan.plan import Plan
from upgrade.run import steps

DEFAULT_BRANCH = "runtime-upgrade/{version}"

Outcome = Literal["written", "committed", "unchanged"]


@dataclass(frozen=True)
class RenderOptions:
    """What to do beyond writing the file."""

    commit: bool = False
    push: bool = False
    branch: str = DEFAULT_BRANCH
    remote: str = "origin"


@dataclass
class RenderResult:
    """Per repo: what happened (and the commit, when one was made)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)
    pushed: list[str] = field(default_factory=list)
    #: Repos whose checkout was moved to another branch: what was done, in words (never
    #: silently: the command prints it).
    switched: dict[str, str] = field(default_factory=dict)


def render(
    inventory: Inventory,
    plan: Plan,
    host_for: Callable[[Repo], Host],
    options: RenderOptions,
    planned: Callable[[Repo, str], str | None] = lambda repo, text: None,
) -> RenderResult:
    """Write every changed repo of ``plan``; check all repos first, so a refusal writes nothing.

    The same write and commit as the playbook's render and commit steps.
    """
    works = [
        steps.RepoWork(repo, host_for(repo), change, change.target,
                       options.branch.format(version=str(change.target)) if options.commit
                       else None, planned)
        for change in plan.changed_repos()
        for repo in (inventory.repos[change.repo],)
        if change.target is not None
    ]
    # Check every repo before writing any: one dirty repo must not leave the fleet half done.
    for work in works:
        steps.ensure_clean(work)
    result = RenderResult()
    for work in works:
        name = work.repo.name
        before = git.status(work.host, str(work.repo.path)).branch if work.branch else None
        result.outcomes[name] = "written" if steps.write_dockerfile(work) else "unchanged"
        if work.branch:
            sha = steps.commit_dockerfile(
                work, work.branch, push_to=options.remote if options.push else None
            )
            if sha:
                result.commits[name] = sha
                result.outcomes[name] = "committed"
            if options.push:
                result.pushed.append(name)
            if before != work.branch:
                result.switched[name] = (
                    f"switched {work.repo.path} from {before or 'a detached HEAD'} to branch "
                    f"{work.branch}; `git switch {before}` goes back" if before else
                    f"switched {work.repo.path} to branch {work.branch}")
    return result
