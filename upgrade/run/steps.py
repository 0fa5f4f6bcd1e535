"""What each playbook step does to a repo or a Deployment. The only code that acts.

Repo steps (render, commit, run) run once per repo and wave; Deployment steps (deploy,
verify, wait) once per Deployment. Every function either returns normally or raises a
:class:`StepFailed` whose message is what the operator reads in the recap.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from upgrade.config.inventory import Deployment, Repo
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.errors import AstroError, CommandFailed, DockerfileError, Interrupted, StepFailed
from upgrade.hosts import git
from upgrade.hosts.host import Host, run_checked, write_leftover
from upgrade.model.dockerfile import find_base_image
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.plan.facts import interrupted_write
from upgrade.plan.plan import PlannedDeployment, RepoChange


@dataclass(frozen=True)
class RepoWork:
    """Everything a repo step needs: the repo, its host, the planned change, the playbook's
    commit settings (render prepares the branch first so the rewrite lands on it)."""

    repo: Repo
    host: Host
    change: RepoChange
    target: RuntimeVersion
    branch: str | None  # set when the playbook commits
    #: The rewrite the run makes of a Dockerfile text (Session.planned): tells a killed run's
    #: own uncommitted write from a person's edit.
    planned: Callable[[Repo, str], str | None] = lambda repo, text: None


def render(work: RepoWork) -> str:
    """Write the planned Dockerfile (on the upgrade branch when the playbook commits).

    The repo must be clean even when the file is already at the target: what is deployed
    from it must be what git holds.
    """
    ensure_clean(work)
    wrote = write_dockerfile(work)
    if wrote:
        return f"wrote {work.repo.dockerfile} ({work.change.current} → {work.target})"
    return f"{work.repo.dockerfile} already at {work.target}"


def write_dockerfile(work: RepoWork) -> bool:
    """Write the planned Dockerfile unless it is already there; True when it wrote. The
    caller has checked the repo is clean (``ensure_clean``)."""
    repo, host = work.repo, work.host
    path = str(repo.dockerfile_path)
    current = host.read_text(path)
    new_text = work.change.new_text
    if new_text is None or current == new_text:
        return False
    if work.branch:
        git.prepare_branch(host, str(repo.path), work.branch)
        on_branch = host.read_text(path)
        if on_branch == new_text:
            return False  # the branch exists from an earlier run and already has it
        if on_branch != current:
            raise git.RepoError(
                f"{repo.name}: branch '{work.branch}' holds another {repo.dockerfile} than the "
                "one planned from; merge or delete that branch, then run again."
            )
    host.write_text(path, new_text)
    return True


def ensure_clean(work: RepoWork) -> None:
    """Refuse a repo with uncommitted changes or an operation in progress (RepoNotClean).

    The exception is our own work: a run killed after writing the Dockerfile and before
    committing it leaves exactly the planned rewrite, which the commit step then records;
    one killed inside ``host.write_text`` leaves that write's temp file
    (``.Dockerfile.<random>.tmp``) untracked, which is removed. Refusing either would stop
    every later run until a human stepped in.
    """
    repo, host = work.repo, work.host
    found = interrupted_write(host, repo, work.planned)
    _remove_leftovers(host, found, write_leftover(repo.dockerfile))


def _remove_leftovers(host: Host, found: git.RepoStatus, pattern: str) -> None:
    """Delete the untracked files matching ``pattern`` (relative to the repo dir)."""
    full = posixpath.normpath(found.prefix + pattern)
    stale = [
        posixpath.join(found.toplevel, change.path)
        for change in found.changes
        if change.code == "??" and fnmatchcase(change.path, full)
    ]
    if stale:
        try:
            run_checked(
                host,
                ["rm", "-f", "--", *stale],
                cwd=found.repo_dir,
                timeout=60,
                action="remove a temp file left by a killed run",
            )
        except CommandFailed as exc:
            raise StepFailed(str(exc)) from exc


def commit(work: RepoWork, args: Mapping[str, Any]) -> str:
    """Commit the Dockerfile alone on the branch; push when asked."""
    branch = args.get("branch") or work.branch
    assert branch
    remote = args.get("remote") or "origin"
    sha = commit_dockerfile(
        work, branch, args.get("message"), push_to=remote if args.get("push") else None
    )
    done = f"committed {sha[:12]} on {branch}" if sha else f"nothing to commit on {branch}"
    return done + (f", pushed to {remote}" if args.get("push") else "")


def commit_dockerfile(
    work: RepoWork, branch: str, message: str | None = None, *, push_to: str | None = None
) -> str | None:
    """Commit only the Dockerfile on ``branch`` (the sha, or None when unchanged); push."""
    repo, host = work.repo, work.host
    git.prepare_branch(host, str(repo.path), branch)
    # The version it moves from is the committed one (a resumed run may find the rewrite
    # already written, and the plan reading it then).
    before = git.committed_text(host, str(repo.path), repo.dockerfile)
    message = message or commit_message(repo.dockerfile, pinned(before), work.target)
    sha = git.commit_file(host, str(repo.path), repo.dockerfile, message)
    if push_to:
        git.push(host, str(repo.path), push_to, branch)
    return sha


def commit_message(path: str, before: RuntimeVersion | None, target: RuntimeVersion) -> str:
    """The commit message naming from → to, as reviewers see it (``path``: the Dockerfile
    inside the repo, the same on every machine)."""
    return (
        f"Upgrade Astro Runtime {before or '?'} → {target}\n\n"
        f"Rewrites {path} to pin Astro Runtime {target}.\n"
        "Generated by astro-fleet-upgrade."
    )


def pinned(text: str | None) -> RuntimeVersion | None:
    """The Runtime a Dockerfile text pins (None: no text, or none it can tell)."""
    if text is None:
        return None
    try:
        return find_base_image(text, path="Dockerfile").version
    except DockerfileError:
        return None


def run(work: RepoWork, args: Mapping[str, Any]) -> str:
    """Run a command (argument list) in the repo on its host, with a time-out."""
    cwd = str(work.repo.path / args["cwd"]) if args.get("cwd") else str(work.repo.path)
    try:
        result = run_checked(
            work.host,
            list(args["argv"]),
            cwd=cwd,
            timeout=float(args.get("timeout", 600)),
            env=args.get("env") or None,
            action=f"{work.repo.name}: run step",
        )
    except CommandFailed as exc:
        raise StepFailed(str(exc)) from exc
    return f"{' '.join(result.argv)} passed in {result.duration:.1f}s"


def already_at_target(
    cp: ControlPlane, planned: PlannedDeployment, *, resuming: bool
) -> str | None:
    """Why no deploy is needed, or None. Resuming asks Astro; a fresh run trusts the plan.

    A deploy interrupted by a crash may have finished: an equal-version redeploy would be
    allowed, but it must not be repeated needlessly.
    """
    target = planned.target
    if resuming:
        info = _status(cp, planned.deployment)
        if try_parse_version(info.runtime_version) == target:
            return f"Astro already runs {target}; not deployed again"
        return None
    if planned.deployed == target:
        return f"Astro already runs {target}; only the Dockerfile needed rewriting"
    return None


def deploy(
    cp: ControlPlane,
    planned: PlannedDeployment,
    work_host: Host,
    repo: Repo,
    description: str,
    timeout: float | None = None,
) -> str:
    """Deploy the repo to the Deployment from its runner; the message names the new image.

    ``timeout`` is the playbook's deploy time-out; the stricter of it and the control
    plane's ``deploy_timeout`` applies.
    """
    dep = planned.deployment
    try:
        outcome = cp.deploy(
            dep.id, dep.workspace_id, repo.path, description, host=work_host, timeout=timeout
        )
    except AstroError as exc:
        raise StepFailed(f"{dep.name}: deploy failed: {exc}") from exc
    return f"deployed image {outcome.image_tag or '?'} in {outcome.duration:.1f}s"


def wait(seconds: float, stop: threading.Event) -> str:
    """Sleep, unless asked to stop."""
    if stop.wait(seconds):
        raise Interrupted("wait interrupted")
    return f"waited {seconds:g}s"


def _status(cp: ControlPlane, dep: Deployment) -> DeploymentInfo:
    try:
        return cp.status(dep.id, dep.workspace_id)
    except AstroError as exc:
        raise StepFailed(f"{dep.name}: cannot read its state from Astro: {exc}") from exc
