"""What the render, commit and deploy steps do to a repo whose ``git.mode`` is ``direct`` or
``pull-request``: the remote's default branch is the truth, never the working tree.

direct::

    fetch ─▶ on <default> at origin/<default> ─▶ rewrite ─▶ commit ─▶ push
                                                   ▲                   │ behind: fetch, rebase
                                                   └── re-render once ◀┘ (Dockerfile moved)
    deploy: only a commit on origin/<default>, from a clean checkout of it

pull-request::

    fetch ─▶ <branch> from origin/<branch> or origin/<default> ─▶ rewrite ─▶ commit ─▶ push
      ─▶ find-or-create the PR ─▶ wait: merged | closed (fail) | auto_merge on green checks
      ─▶ <default> at the merge commit ─▶ deploy: cli (astro deploy) | ci (wait for Astro's
         deploy record of the merge commit)

Every fact the remote or the forge confirmed (the commit pushed, the PR's number and URL,
the merge commit) is recorded in the journal (``repo_changes``) before the next step, so a
resumed run pushes nothing twice and opens no second PR. Only the executor touches repos;
the decisions are small functions of what git and the forge answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from upgrade.config.git import GitSettings
from upgrade.config.inventory import Deployment, Repo
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deploy_record import DeployRecord, latest_with_git
from upgrade.controlplane.forge import Forge, PullRequest
from upgrade.controlplane.forges import forge_for, project_of
from upgrade.errors import AstroError, Interrupted, StepFailed, UpgradeError
from upgrade.hosts import git, git_history
from upgrade.hosts.host import Host
from upgrade.journal.records import RepoChange
from upgrade.journal.store import Journal
from upgrade.model.versions import RuntimeVersion, try_parse_version

#: The commit message for a rewrite of the Dockerfile text the commit starts from (the
#: remote's, which may have moved since the plan, or which a resumed run may find rewritten).
Message = Callable[[str | None], str]
#: The pull request's (title, body) from the Dockerfile on the base branch and on the pushed
#: branch: the real change, whatever the checkout holds now.
Describe = Callable[[str | None, str | None], tuple[str, str]]


@dataclass
class RepoGit:
    """One repo's git mode within one run: its remote, its default branch, its forge."""

    repo: Repo
    host: Host
    journal: Journal
    rollout_id: int
    stop: threading.Event
    forges: Callable[[GitSettings, str], Forge] = forge_for
    _default: str | None = field(default=None, init=False)
    _fetched: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def settings(self) -> GitSettings:
        """The repo's ``git:`` setting."""
        return self.repo.git

    @property
    def dir(self) -> str:
        """The repo's directory on its runner."""
        return str(self.repo.path)

    @property
    def remote(self) -> str:
        """The remote holding the truth."""
        return self.settings.remote

    def default_branch(self) -> str:
        """``git.default_branch``, else the branch the remote's HEAD names (asked once)."""
        if self._default is None:
            self._default = self.settings.default_branch or git.remote_head(
                self.host, self.dir, self.remote)
        return self._default

    def tracking(self, branch: str | None = None) -> str:
        """``refs/remotes/<remote>/<branch>`` (the default branch unless named)."""
        return f"refs/remotes/{self.remote}/{branch or self.default_branch()}"

    def record(self) -> RepoChange | None:
        """What the journal holds of this repo's change in this rollout."""
        return self.journal.repo_change(self.rollout_id, self.repo.name)

    def note(self, message: str, source: str, **fields: Any) -> RepoChange:
        """Record what the remote or the forge confirmed (one event naming its ``source``:
        ``git`` or ``forge``)."""
        return self.journal.record_repo_change(self.rollout_id, self.repo.name,
                                               self.settings.mode, message, source=source,
                                               **fields)

    def fetch(self, *branches: str) -> None:
        """Fetch the default branch (and ``branches``), one fetch per repo at a time."""
        with self._lock:
            git.fetch(self.host, self.dir, self.remote, self.default_branch(), *branches)
            self._fetched = True

    def fetched(self) -> None:
        """Fetch unless this run already did (a push updates the remote-tracking ref too)."""
        if not self._fetched:
            self.fetch()

    def project(self) -> str:
        """``owner/name`` on the forge: ``git.project``, else from the remote's URL."""
        return project_of(self.repo, self.host)


# ------------------------------------------------------------------------------ render


def render(rg: RepoGit, branch: str, planned: Callable[[str], str]) -> str:
    """Put the checkout where the change is made, and write the rewrite of the remote's
    Dockerfile. Returns what it did, in words (it may switch branches: it says so)."""
    host, d, repo = rg.host, rg.dir, rg.repo
    default = rg.default_branch()
    found = None  # direct mode: the local default branch's commit before this step
    if rg.settings.mode == "pull-request":
        done = rg.record()
        if done is not None and done.merge_commit:
            return f"merged already (PR #{done.pr_number}, {done.merge_commit[:12]})"
        remote_tip = git.remote_branch(host, d, rg.remote, branch)
        rg.fetch(*([branch] if remote_tip else []))
        start = rg.tracking(branch) if remote_tip else rg.tracking()
        before = git.status(host, d).branch
        git.switch(host, d, branch, start)
        moved = f"switched from {before or 'a detached HEAD'} to {branch} " \
                f"(from {rg.remote}/{branch if remote_tip else default}); "
    else:
        rg.fetch()
        found = git_history.rev(host, d, f"refs/heads/{default}")
        moved = _on_default(rg, planned)
    try:
        text = git_history.text_at(host, d, "HEAD", repo.dockerfile)
        if text is None:
            raise StepFailed(f"{repo.name}: {rg.remote}/{default} has no {repo.dockerfile}.")
        new = _rewrite(rg, planned, text)
    except StepFailed:
        if found is not None:
            # As this run found it: a checkout left at a Dockerfile nobody can upgrade
            # would make the next plan refuse the Deployment even once the remote is fixed.
            git.reset_to(host, d, found)
        raise
    if new == text:
        return moved + f"{repo.dockerfile} already at the target on {rg.remote}/{default}"
    host.write_text(str(repo.dockerfile_path), new)
    return moved + f"wrote {repo.dockerfile}"


def _on_default(rg: RepoGit, planned: Callable[[str], str]) -> str:
    """Switch to the default branch at the remote's commit (a killed run's own unpushed
    commit is kept); refuse a local branch with someone's unpushed work."""
    host, d = rg.host, rg.dir
    default, upstream = rg.default_branch(), rg.tracking()
    found = git.status(host, d)
    said = ""
    if found.branch != default:
        if git_history.rev(host, d, f"refs/heads/{default}") is None:
            git.switch(host, d, default, upstream)
        else:
            git.switch(host, d, default)
        said = f"switched from {found.branch or 'a detached HEAD'} to {default}; "
    local, remote = git_history.rev(host, d, "HEAD"), git_history.rev(host, d, upstream)
    assert remote is not None
    if local == remote or local is None:
        return said
    if git_history.is_ancestor(host, d, local, remote):
        git.fast_forward(host, d, remote)
        return said + f"fast-forwarded {default} to {rg.remote}/{default}; "
    base = git_history.merge_base(host, d, local, remote)
    if base is not None and _own_commit(rg, base, local, planned):
        if base == remote:
            return said + f"kept this run's unpushed commit {local[:12]}; "
        # The tool's own rewrite, made on an older commit of the remote (its push was
        # refused or raced): nothing of anyone's is lost; it is made again on the new one.
        git.reset_to(host, d, remote)
        return said + (f"dropped the unpushed rewrite {local[:12]} of an earlier run (made on "
                       f"{base[:12]}, {rg.remote}/{default} has moved since); ")
    ahead = len(git_history.commits_between(host, d, remote, local))
    raise StepFailed(
        f"{rg.repo.name}: local {default} has {ahead} commit(s) that {rg.remote}/{default} "
        "lacks, not written by this tool. Push them if they belong there, or drop them with "
        f"`git -C {d} reset --hard {rg.remote}/{default}`; then run again.")


def _own_commit(rg: RepoGit, base: str, tip: str, planned: Callable[[str], str]) -> bool:
    """True when ``tip`` is one commit on ``base`` that only writes the planned Dockerfile."""
    host, d, name = rg.host, rg.dir, rg.repo.dockerfile
    if git_history.commits_between(host, d, base, tip) != [tip]:
        return False
    found = git.status(host, d)
    if git_history.changed_files(host, d, base, tip) != [found.prefix + name]:
        return False
    before = git_history.text_at(host, d, base, name)
    after = git_history.text_at(host, d, tip, name)
    if before is None or after is None:
        return False
    try:
        return planned(before) == after
    except UpgradeError:  # not a text this run rewrites: not its commit either
        return False


def _rewrite(rg: RepoGit, planned: Callable[[str], str], text: str) -> str:
    """``planned(text)``: the rewrite of the remote's Dockerfile, or StepFailed saying why
    there is none (unreadable, no Astro Runtime image, newer than the target)."""
    try:
        return planned(text)
    except UpgradeError as exc:
        raise StepFailed(f"{rg.repo.name}: cannot re-render {rg.repo.dockerfile} as it is on "
                         f"{rg.remote}/{rg.default_branch()}: {exc} Fix it there (or leave the "
                         "repo out with --limit), then run again.") from exc


# ------------------------------------------------------------------------------ commit


def commit_direct(rg: RepoGit, message: Message, planned: Callable[[str], str]) -> str:
    """Commit on the default branch and push it; once behind (the remote moved before our
    push, or during it under a concurrent push), rebase (or re-render when the Dockerfile
    moved upstream) and push again. A refusal leaves the local branch where this step
    found it and names the way out."""
    host, d, repo = rg.host, rg.dir, rg.repo
    default = rg.default_branch()
    found = git_history.rev(host, d, "HEAD")
    assert found is not None
    base, head = _commit_over_tracking(rg, message)
    if git_history.is_ancestor(host, d, head, base):
        return _held_already(rg, base)
    said = ""
    try:
        for attempt in (1, 2):
            pushed = git.push_branch(host, d, rg.remote, "HEAD", default)
            if pushed.outcome == "pushed":
                rg.note(f"{repo.name}: {said}pushed {head[:12]} to {rg.remote}/{default}", "git",
                        branch=default, base_commit=base, pushed_commit=head)
                return said + f"committed {head[:12]} on {default}, pushed to {rg.remote}"
            if pushed.outcome == "declined":
                raise StepFailed(
                    f"{repo.name}: {rg.remote} refused the push to {default} ({pushed.said}). "
                    "The branch is protected: use git.mode: pull-request for this repo.")
            if attempt == 2:
                break
            head, base, how = _catch_up(rg, base, head, message, planned)
            said = how
        raise StepFailed(f"{repo.name}: {rg.remote}/{default} kept moving (another push "
                         f"landed before each of ours); {head[:12]} was not pushed. Run again.")
    except StepFailed:
        git.reset_to(host, d, found)  # nothing of ours stays on the branch, unpushed
        raise


def _held_already(rg: RepoGit, base: str) -> str:
    """Nothing to commit: the remote's default branch holds the change. A resumed run
    records the commit that brought it, found in git, when the journal lacks it."""
    default = rg.default_branch()
    done = rg.record()
    holder = git_history.last_change(rg.host, rg.dir, base, rg.repo.dockerfile) or base
    if done is None or not done.pushed_commit:
        rg.note(f"{rg.repo.name}: {rg.remote}/{default} holds the change since "
                f"{holder[:12]} (found in git)", "git", branch=default, pushed_commit=holder)
    return f"{rg.remote}/{default} already holds the change ({holder[:12]})"


def _catch_up(rg: RepoGit, base: str, head: str, message: Message,
              planned: Callable[[str], str]) -> tuple[str, str, str]:
    """The remote's default branch moved under us: rebase our commit onto it, or, when the
    Dockerfile itself changed there, re-render it from the new text (once)."""
    host, d, name = rg.host, rg.dir, rg.repo.dockerfile
    rg.fetch()
    new_base = git_history.rev(host, d, rg.tracking())
    assert new_base is not None
    prefix = git.status(host, d).prefix
    moved = prefix + name in git_history.changed_files(host, d, base, new_base)
    if not moved and git.rebase(host, d, rg.tracking()):
        head = git_history.rev(host, d, "HEAD") or head
        return head, new_base, f"rebased onto {rg.remote}/{rg.default_branch()} " \
                               f"({new_base[:12]}); "
    upstream = git_history.text_at(host, d, new_base, name)
    new, why = None, "it is gone"
    try:
        new = planned(upstream) if upstream is not None else None
    except UpgradeError as exc:
        why = str(exc).rstrip(".")
    if new is None:
        default = rg.default_branch()
        raise StepFailed(
            f"{rg.repo.name}: {name} changed on {rg.remote}/{default} ({base[:12]} → "
            f"{new_base[:12]}) and cannot be re-rendered ({why}); our commit {head[:12]} was "
            f"not pushed and local {default} is back where this run found it. Fix {name} on "
            f"{rg.remote}/{default} (or leave the repo out with --limit), then run again.")
    git.reset_to(host, d, new_base)
    host.write_text(str(rg.repo.dockerfile_path), new)
    git.commit_file(host, d, name, message(upstream))
    head = git_history.rev(host, d, "HEAD") or head
    return head, new_base, f"{name} changed upstream ({base[:12]} → {new_base[:12]}): " \
                           "re-rendered; "


def commit_pull_request(rg: RepoGit, branch: str, message: Message, describe: Describe) -> str:
    """Commit on the branch, push it (unless the remote has it), find or open the PR, wait
    until it is merged, then put the default branch at the merge commit."""
    repo = rg.repo
    default = rg.default_branch()
    done = rg.record()
    if done is None or not done.merge_commit:
        if done is None or done.pr_number is None:
            done = _push_branch(rg, branch, message)
            if done is None:
                return f"{rg.remote}/{default} already holds the change"
        with rg.forges(rg.settings, rg.project()) as forge:
            pr = _open(rg, forge, branch, describe, done)
            merge, how = _wait_merged(rg, forge, pr)
        done = rg.note(f"{repo.name}: PR #{pr.number} {how} as {merge[:12]}", "forge",
                       merge_commit=merge)
    assert done.merge_commit is not None
    rg.fetch()
    _checkout(rg, done.merge_commit)
    return f"PR #{done.pr_number} ({done.pr_url}) merged as {done.merge_commit[:12]}; " \
           f"{default} checked out there"


def _commit_over_tracking(rg: RepoGit, message: Message) -> tuple[str, str]:
    """Commit the Dockerfile on top of the checkout; (the tracked remote branch's commit
    it started from, HEAD after). HEAD is an ancestor of that base when nothing changed."""
    base = git_history.rev(rg.host, rg.dir, rg.tracking())
    assert base is not None
    before = git_history.text_at(rg.host, rg.dir, base, rg.repo.dockerfile)
    git.commit_file(rg.host, rg.dir, rg.repo.dockerfile, message(before))
    head = git_history.rev(rg.host, rg.dir, "HEAD")
    assert head is not None
    return base, head


def _push_branch(rg: RepoGit, branch: str, message: Message) -> RepoChange | None:
    host, d, repo = rg.host, rg.dir, rg.repo
    base, head = _commit_over_tracking(rg, message)
    if git_history.is_ancestor(host, d, head, base):
        _held_already(rg, base)
        return None
    if git.remote_branch(host, d, rg.remote, branch) != head:
        pushed = git.push_branch(host, d, rg.remote, "HEAD", branch)
        if pushed.outcome != "pushed":
            raise StepFailed(f"{repo.name}: {rg.remote} refused the push of {branch} "
                             f"({pushed.said}). Delete or fix that branch, then run again.")
    return rg.note(f"{repo.name}: pushed {head[:12]} to {rg.remote}/{branch}", "git",
                   branch=branch, base_commit=base, pushed_commit=head)


def _open(rg: RepoGit, forge: Forge, branch: str, describe: Describe,
          done: RepoChange) -> PullRequest:
    if done.pr_number is not None:
        return forge.get(done.pr_number)
    # A run killed after opening the PR, before recording it, whose PR a person then
    # merged: the forge knows it, merged, not open. Found, never opened a second time.
    merged = forge.find_merged(branch, rg.default_branch(), done.pushed_commit or "")
    if merged is not None:
        rg.note(f"{rg.repo.name}: found PR #{merged.number} {merged.url} merged (the forge "
                "says)", "forge", pr_number=merged.number, pr_url=merged.url)
        return merged
    # What the branch changes, from git (a resumed run's checkout already holds the
    # rewrite: the plan would see no change).
    name = rg.repo.dockerfile
    before = (git_history.text_at(rg.host, rg.dir, done.base_commit, name)
              if done.base_commit else None)
    after = (git_history.text_at(rg.host, rg.dir, done.pushed_commit, name)
             if done.pushed_commit else None)
    title, body = describe(before, after)
    pr, created = forge.find_or_create(branch, rg.default_branch(), title, body)
    how = "opened" if created else "reused the open"
    rg.note(f"{rg.repo.name}: {how} PR #{pr.number} {pr.url}", "forge", pr_number=pr.number,
            pr_url=pr.url)
    return pr


def _wait_merged(rg: RepoGit, forge: Forge, pr: PullRequest) -> tuple[str, str]:
    """The merge commit, once the PR is merged (by a person, or by us on green checks), and
    how it was merged, in words."""
    settings = rg.settings
    deadline = time.monotonic() + settings.merge_timeout
    while True:
        pr = forge.get(pr.number)
        if pr.state == "merged" and pr.merge_commit:
            return pr.merge_commit, "was merged (the forge says)"
        if pr.state == "closed":
            raise StepFailed(f"{rg.repo.name}: PR #{pr.number} ({pr.url}) was closed without "
                             "being merged. Reopen and merge it, or abandon the rollout.")
        if settings.auto_merge:
            checks = forge.checks(pr)
            if checks == "failure":
                raise StepFailed(f"{rg.repo.name}: the checks failed on PR #{pr.number} "
                                 f"({pr.url}); it was not merged.")
            if checks == "success":
                merged = forge.merge(pr, f"Merge PR #{pr.number}: Astro Runtime upgrade")
                if merged.outcome == "merged" and merged.sha:
                    return merged.sha, "merged on green checks"
                if merged.outcome == "not_mergeable":
                    raise StepFailed(f"{rg.repo.name}: PR #{pr.number} ({pr.url}) cannot be "
                                     f"merged: {merged.said}. Resolve it, then run again.")
        if time.monotonic() >= deadline:
            raise StepFailed(f"{rg.repo.name}: PR #{pr.number} ({pr.url}) was not merged "
                             f"within {settings.merge_timeout // 60} min.")
        if rg.stop.wait(settings.poll_interval):
            raise Interrupted(f"{rg.repo.name}: stopped waiting for PR #{pr.number}")


def _checkout(rg: RepoGit, merge: str) -> None:
    """Leave the checkout on the default branch at the merge commit (what gets deployed)."""
    host, d, default = rg.host, rg.dir, rg.default_branch()
    if not git_history.is_ancestor(host, d, merge, rg.tracking()):
        raise StepFailed(f"{rg.repo.name}: the merge commit {merge[:12]} is not on "
                         f"{rg.remote}/{default}; refusing to deploy it.")
    if git_history.rev(host, d, f"refs/heads/{default}") is None:
        git.switch(host, d, default, merge)
        return
    git.switch(host, d, default)
    head = git_history.rev(host, d, "HEAD")
    if head is None or head == merge:
        return
    if git_history.is_ancestor(host, d, head, merge):
        git.fast_forward(host, d, merge)
    elif not (git_history.is_ancestor(host, d, merge, head)
              and git_history.is_ancestor(host, d, head, rg.tracking())):
        # (A local default branch already past the merge, on the remote, is kept: it holds it.)
        raise StepFailed(f"{rg.repo.name}: local {default} ({(head or '?')[:12]}) has diverged "
                         f"from the merge commit {merge[:12]}. Reset it to {rg.remote}/{default}"
                         ", then run again.")


# ------------------------------------------------------------------------------ deploy


def deployable(rg: RepoGit) -> str:
    """The commit a CLI deploy would build: HEAD, clean and on the remote's default branch;
    StepFailed naming the commit and the branch otherwise."""
    host, d, repo = rg.host, rg.dir, rg.repo
    default = rg.default_branch()
    rg.fetched()
    head = git_history.rev(host, d, "HEAD")
    if head is None:
        raise StepFailed(f"{repo.name}: the checkout has no commit to deploy.")
    working = host.read_text(str(repo.dockerfile_path))
    if git_history.text_at(host, d, "HEAD", repo.dockerfile) != working:
        raise StepFailed(f"{repo.name}: {repo.dockerfile} differs from commit {head[:12]}; "
                         "refusing to deploy code that is on no branch.")
    if not git_history.is_ancestor(host, d, head, rg.tracking()):
        raise StepFailed(f"{repo.name}: refusing to deploy commit {head[:12]}: it is not on "
                         f"{rg.remote}/{default}.")
    return head


def wait_for_ci(cp: ControlPlane, rg: RepoGit, dep: Deployment, target: RuntimeVersion,
                interval: float | None = None) -> DeployRecord:
    """Wait until Astro reports ``target`` running on ``dep`` from a deploy whose git commit
    is the merge commit; StepFailed after ``git.ci_timeout``. Returns that deploy record."""
    done = rg.record()
    commit = done.merge_commit if done is not None else None
    if commit is None:  # nothing was merged in this rollout: the default branch's head
        rg.fetch()
        commit = git_history.rev(rg.host, rg.dir, rg.tracking())
        assert commit is not None
    settings = rg.settings
    deadline = time.monotonic() + settings.ci_timeout
    platform = cp.platform
    if platform is None:
        raise StepFailed(f"{dep.name}: deploy: ci needs Astro's platform API (its deploy "
                         "records say which commit CI deployed); set the API token.")
    while True:
        try:
            records = platform.deploys(dep.id)
            found = _deployed(records, commit)
            running = try_parse_version(cp.status(dep.id, dep.workspace_id).runtime_version)
        except AstroError as exc:
            raise StepFailed(f"{dep.name}: cannot read its deploys from Astro: {exc}") from exc
        if found is not None and running == target:
            return found
        if time.monotonic() >= deadline:
            minutes = settings.ci_timeout / 60
            raise StepFailed(f"CI did not deploy {commit[:12]} to {dep.name} within "
                             f"{minutes:g} min.{_without_commit(records, target)}")
        if rg.stop.wait(interval or settings.poll_interval):
            raise Interrupted(f"{dep.name}: stopped waiting for CI")


def deployed_record(cp: ControlPlane, dep: Deployment) -> DeployRecord | str:
    """Astro's record of the deploy ``dep`` runs now (the newest one that deployed, with the
    commit it was built from), read when a resumed run finds a deploy done that it did not
    see finish; or, in words, why there is none."""
    if cp.platform is None:
        return "Astro's deploy records need its platform API (set ASTRO_API_TOKEN)"
    try:
        records = cp.platform.deploys(dep.id)
    except AstroError as exc:
        raise StepFailed(f"{dep.name}: cannot read its deploys from Astro: {exc}") from exc
    done = latest_with_git([r for r in records if r.status == "DEPLOYED"])
    return done if done is not None else "no deploy record of Astro's names a git commit"


def _without_commit(records: list[DeployRecord], target: RuntimeVersion) -> str:
    """Why CI's deploy may not have counted: one of the target carries no commit."""
    if not any(r.status == "DEPLOYED" and r.git is None
               and try_parse_version(r.runtime_version) == target for r in records):
        return ""
    return (f" Astro has a deploy of Runtime {target} without git metadata: CI's astro CLI "
            "attached no commit (it does for a non-GitHub remote only from astro-cli 1.43.0 "
            "on, for github.com from 1.40.0, and only from a clean checkout). Upgrade the "
            "CLI in CI.")


def _deployed(records: list[DeployRecord], commit: str) -> DeployRecord | None:
    for record in records:
        if record.status == "DEPLOYED" and record.git is not None and \
                record.git.commit_sha == commit:
            return record
    return None
