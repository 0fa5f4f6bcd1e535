"""Taking back what a halted rollout wrote but never deployed.

When Astro refuses the rollout's target itself (not one Deployment's state), every repo the
wave rewrote before the refusal carries a commit that no Deployment runs. The commands are
derived from what the journal confirmed (a pushed commit, a pull request, its merge) and
from the playbook's branch for repos in ``git.mode: local``; nothing is run for the user:
reverting a shared branch is a decision for a person.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable

from upgrade.config.inventory import Repo
from upgrade.journal.records import DeploymentRecord, RepoChange
from upgrade.journal.states import PENDING, RUNNING_NEW, SKIPPED

#: Journal states in which a Deployment runs the new commit (undoing would strand it).
RUNNING = frozenset(RUNNING_NEW)
#: States that mean nothing was written for that Deployment yet.
UNTOUCHED = frozenset({PENDING, SKIPPED})


def never_deployed(records: Iterable[DeploymentRecord]) -> list[str]:
    """Repos (sorted) rewritten in the rollout whose Deployments none run the new commit."""
    touched: set[str] = set()
    running: set[str] = set()
    for record in records:
        if record.state in RUNNING:
            running.add(record.repo)
        elif record.state not in UNTOUCHED:
            touched.add(record.repo)
    return sorted(touched - running)


def undo_command(repo: Repo, change: RepoChange | None, local_branch: str | None) -> str:
    """One line for ``repo``: what to run (or do) to take its unused change back."""
    where = f"git -C {shlex.quote(str(repo.path))}"
    if change is None or change.mode == "local":
        if not local_branch:
            return f"{repo.name}: nothing was committed; `{where} checkout -- {repo.dockerfile}`"
        return (f"{repo.name}: nothing was pushed; `{where} checkout - && {where} branch -D "
                f"{shlex.quote(local_branch)}`")
    if change.merge_commit:
        return (f"{repo.name}: pull request {change.pr_url or change.pr_number} was merged; "
                f"`{where} revert --no-edit -m 1 {change.merge_commit} && {where} push origin "
                f"HEAD:{shlex.quote(change.branch or 'HEAD')}` (on the default branch)")
    if change.pr_number is not None:
        return (f"{repo.name}: close pull request {change.pr_url or change.pr_number} "
                "without merging it")
    if change.pushed_commit:
        return (f"{repo.name}: {change.pushed_commit[:12]} was pushed to "
                f"{change.branch}; `{where} revert --no-edit {change.pushed_commit} && "
                f"{where} push origin HEAD:{shlex.quote(change.branch or 'HEAD')}`")
    return f"{repo.name}: nothing reached the remote; `{where} reset --hard @{{upstream}}`"


def undo_lines(
    repos: Iterable[Repo],
    change_of: Callable[[str], RepoChange | None],
    local_branch: Callable[[Repo], str | None],
) -> list[str]:
    """:func:`undo_command` for each of ``repos``."""
    return [undo_command(repo, change_of(repo.name), local_branch(repo)) for repo in repos]
