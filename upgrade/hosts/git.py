"""Git operations on an Astro project repo, always through a :class:`~upgrade.hosts.Host`.

Every call is ``git`` with an argument list, ``cwd`` set to the repo directory, a time-out,
``LC_ALL=C`` (stable output to parse) and ``GIT_TERMINAL_PROMPT=0`` (a missing credential
fails instead of waiting for a password nobody will type). Nothing here stages or commits
any file but the one it is asked to.

The repo directory may be a subdirectory of a repository (an Astro project inside a
monorepo) or a linked worktree; paths given to these functions are relative to it.

Errors (from ``upgrade.errors``)::

    InputError
    └── RepoError              not a repository, unknown remote, bad branch name
        └── RepoNotClean       uncommitted changes, or a merge/rebase/... in progress
    ServiceError
    └── CommandFailed          a git command failed (upgrade.hosts.host.command_failed)
        └── PushFailed         git push failed or timed out
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from upgrade.errors import PushFailed, RepoError, RepoNotClean
from upgrade.hosts.host import CommandResult, Host, command_failed, run_checked
from upgrade.model.redact import redact

# Local git commands (status, add, commit, switch) on a healthy repo take well under a second;
# the margin is for slow disks and hooks.
GIT_TIMEOUT = 60.0
# Pushing crosses the network and may run server-side hooks.
PUSH_TIMEOUT = 300.0

# The identity used for commits when neither the environment nor git config provides one
# (a fresh build host), instead of failing the whole Deployment.
FALLBACK_NAME = "Astro Fleet Upgrade"
FALLBACK_EMAIL = "astro-fleet-upgrade@localhost"

GIT_ENV: Mapping[str, str] = {
    "LC_ALL": "C",
    "GIT_TERMINAL_PROMPT": "0",
    # Read-only commands (status) must not take index.lock behind the user's back.
    "GIT_OPTIONAL_LOCKS": "0",
    # A path like ":(glob)*" is a file name here, never pathspec magic.
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_PAGER": "cat",
    "GIT_EDITOR": "true",
}

_CHANGE_WORDS = {
    "M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied",
    "T": "type changed",
}
# How many dirty files an error names before it says "and N more".
_MAX_LISTED = 20

Operation = Literal["rebase", "am", "merge", "cherry-pick", "revert", "bisect"]
BranchAction = Literal["created", "switched", "current"]

# State files under the git dir (resolved with `git rev-parse --git-path`, so linked
# worktrees work), in the order they are reported.
_STATE_FILES: tuple[tuple[str, Operation], ...] = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("BISECT_LOG", "bisect"),
)

_HOW_TO_FINISH: Mapping[Operation, str] = {
    "rebase": "resolve the conflicts and run `git rebase --continue`, or `git rebase --abort`",
    "am": "resolve the conflicts and run `git am --continue`, or `git am --abort`",
    "merge": "resolve the conflicts and run `git commit`, or `git merge --abort`",
    "cherry-pick": (
        "resolve the conflicts and run `git cherry-pick --continue`, or `git cherry-pick --abort`"
    ),
    "revert": "resolve the conflicts and run `git revert --continue`, or `git revert --abort`",
    "bisect": "run `git bisect reset` when the bisect is done",
}


@dataclass(frozen=True)
class FileChange:
    """One entry of ``git status --porcelain``: the XY code and the path from the top level."""

    code: str
    path: str
    orig_path: str | None = None

    def describe(self) -> str:
        """The XY code in words: "modified, not staged", "untracked", "conflicted"."""
        if self.code == "??":
            return "untracked"
        if "U" in self.code or self.code in ("AA", "DD"):
            return "conflicted"
        staged, unstaged = self.code[0], self.code[1]
        parts = [f"{_CHANGE_WORDS.get(staged, staged)}, staged"] if staged != " " else []
        if unstaged != " ":
            parts.append(f"{_CHANGE_WORDS.get(unstaged, unstaged)}, not staged")
        return "; ".join(parts)

    def __str__(self) -> str:
        moved = f" from {self.orig_path}" if self.orig_path else ""
        return f"{self.path} ({self.describe()}{moved})"


@dataclass(frozen=True)
class RepoStatus:
    """What a repo looks like before we touch it."""

    repo_dir: str
    is_repo: bool
    problem: str = ""  # git's words when this is not a usable work tree
    toplevel: str = ""
    prefix: str = ""  # repo_dir relative to toplevel, "" or ending in "/"
    branch: str | None = None  # None when HEAD is detached
    head: str | None = None  # None before the first commit
    changes: tuple[FileChange, ...] = ()
    in_progress: tuple[Operation, ...] = ()
    remotes: tuple[str, ...] = ()

    @property
    def detached(self) -> bool:
        """True when HEAD points at a commit rather than a branch."""
        return self.is_repo and self.branch is None

    @property
    def clean(self) -> bool:
        """True for a repo with no changes and nothing in progress."""
        return self.is_repo and not self.changes and not self.in_progress


def status(host: Host, repo_dir: str) -> RepoStatus:
    """Inspect ``repo_dir``: branch, HEAD, changed files, operations in progress, remotes."""
    if not host.exists(repo_dir):
        return RepoStatus(repo_dir, False, problem="the directory does not exist")
    paths = [name for name, _ in _STATE_FILES] + ["rebase-apply/applying", "sequencer/todo"]
    where = ["rev-parse", "--is-inside-work-tree", "--show-toplevel", "--show-prefix",
             *(arg for path in paths for arg in ("--git-path", path))]
    # Where, HEAD's commit and its branch in one git run (a wave asks this of every repo
    # twice; each git run costs the orchestrator ~0.5 ms and git ~2 ms of CPU). A repo
    # without a commit yet fails it, and so does anything else unusual: then one
    # question at a time.
    probe = run_git(host, repo_dir, [*where, "HEAD^{commit}", "--symbolic-full-name", "HEAD"])
    lines = probe.stdout.split("\n")
    if probe.ok and len(lines) >= 5 + len(paths):
        inside, toplevel, prefix, *git_paths = lines[: 3 + len(paths)]
        head_sha, ref = lines[3 + len(paths)], lines[4 + len(paths)]
        head: str | None = head_sha.strip() or None
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    else:
        probe = run_git(host, repo_dir, where)
        if not probe.ok:
            return RepoStatus(repo_dir, False, problem=_first_line(probe.stderr) or "git failed")
        inside, toplevel, prefix, *git_paths = probe.stdout.split("\n")[: 3 + len(paths)]
        if inside != "true":
            return RepoStatus(repo_dir, False, problem="it has no work tree (a bare repository?)")
        found_head = run_git(host, repo_dir, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        found_branch = run_git(host, repo_dir, ["symbolic-ref", "--quiet", "--short", "HEAD"])
        head = found_head.stdout.strip() if found_head.ok else None
        branch = found_branch.stdout.strip() if found_branch.ok else None
    if inside != "true":
        return RepoStatus(repo_dir, False, problem="it has no work tree (a bare repository?)")
    # Relative answers are relative to repo_dir; a linked worktree's are absolute.
    state = {
        name: posixpath.join(repo_dir, found)
        for name, found in zip(paths, git_paths, strict=True)
    }
    porcelain = run_git_checked(
        host, repo_dir, ["status", "--porcelain=v1", "-z", "--untracked-files=all"]
    )
    remotes = run_git_checked(host, repo_dir, ["remote"])
    return RepoStatus(
        repo_dir=repo_dir,
        is_repo=True,
        toplevel=toplevel,
        prefix=prefix,
        branch=branch,
        head=head,
        changes=parse_porcelain(porcelain.stdout),
        in_progress=_in_progress(host, state),
        remotes=tuple(remotes.stdout.split()),
    )


def ensure_clean(
    host: Host, repo_dir: str, *, allow: Iterable[str] = frozenset()
) -> RepoStatus:
    """Refuse a repo that has uncommitted changes or an operation in progress.

    ``allow`` holds paths (relative to ``repo_dir``, ``fnmatch`` patterns allowed) that may
    be dirty, e.g. the Dockerfile a killed run already rewrote. Returns the status.
    """
    found = status(host, repo_dir)
    if not found.is_repo:
        raise RepoError(
            f"{repo_dir} is not a usable git repository: {found.problem}. "
            "Point the inventory at the Astro project's checkout."
        )
    if found.in_progress:
        raise RepoNotClean(_in_progress_message(repo_dir, found.in_progress))
    allowed = [posixpath.normpath(found.prefix + pattern) for pattern in allow]
    dirty = [
        change
        for change in found.changes
        if not any(
            fnmatchcase(path, pattern)
            for path in filter(None, (change.path, change.orig_path))
            for pattern in allowed
        )
    ]
    if dirty:
        listed = ", ".join(str(change) for change in dirty[:_MAX_LISTED])
        more = f" and {len(dirty) - _MAX_LISTED} more" if len(dirty) > _MAX_LISTED else ""
        raise RepoNotClean(
            f"{repo_dir} has uncommitted changes ({len(dirty)} files): {listed}{more}. "
            "Commit, stash or discard them, then run again."
        )
    return found


def committed_text(host: Host, repo_dir: str, relpath: str) -> str | None:
    """``relpath``'s text at HEAD (CRLF kept), or None before the first commit or when HEAD
    has no such file."""
    result = run_git(host, repo_dir, ["show", f"HEAD:./{relpath}"])
    return result.stdout if result.ok else None


def prepare_branch(host: Host, repo_dir: str, branch: str) -> BranchAction:
    """Switch ``repo_dir`` to ``branch``, creating it from HEAD if it does not exist yet.

    Idempotent: on the branch already, nothing happens. Only local branches count; a
    branch that exists only on a remote is created anew from HEAD.
    """
    check = run_git(host, repo_dir, ["check-ref-format", "--branch", branch])
    # --branch also expands "@{-1}" to the previous branch; we want the name as written.
    if not check.ok or check.stdout.strip() != branch:
        raise RepoError(
            f"{branch!r} is not a valid git branch name (for {repo_dir}). "
            "Choose a name `git check-ref-format --branch` accepts, e.g. upgrade/runtime-12.4.0."
        )
    current = run_git(host, repo_dir, ["symbolic-ref", "--quiet", "--short", "HEAD"])
    if current.ok and current.stdout.strip() == branch:
        return "current"
    exists = run_git(host, repo_dir, ["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"])
    if exists.ok:
        run_git_checked(
            host, repo_dir, ["switch", "--no-guess", branch],
            action=f"Could not switch {repo_dir} to its existing branch {branch!r}",
        )
        return "switched"
    run_git_checked(
        host, repo_dir, ["switch", "--no-track", "-c", branch],
        action=f"Could not create branch {branch!r} in {repo_dir}",
    )
    return "created"


def commit_file(host: Host, repo_dir: str, relpath: str, message: str) -> str | None:
    """Commit exactly ``relpath`` (relative to ``repo_dir``) with ``message``; return the sha.

    Returns None when the file already matches HEAD, so a re-run commits nothing twice.
    Other files, staged or not, are left exactly as they were. The identity is the one
    git config or the environment gives; if there is none, FALLBACK_NAME/FALLBACK_EMAIL.
    """
    if not message.strip():
        raise ValueError("a commit message must not be empty")
    path = posixpath.normpath(relpath)
    if posixpath.isabs(path) or path == ".." or path.startswith("../"):
        raise RepoError(f"{relpath!r} must be a path inside {repo_dir}, relative to it.")
    known = run_git_checked(
        host, repo_dir, ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", path]
    )
    matches = [entry for entry in known.stdout.split("\0") if entry]
    if matches != [path]:
        what = "is not a single file" if matches else "does not exist or is ignored by git"
        raise RepoError(f"Cannot commit {path} in {repo_dir}: it {what}.")
    action = f"Could not commit {path} in {repo_dir}"
    run_git_checked(host, repo_dir, ["add", "--", path], action=action)
    unchanged = run_git(host, repo_dir, ["diff", "--cached", "--quiet", "--", path])
    if unchanged.exit_code == 0 and not unchanged.timed_out:
        return None
    if unchanged.exit_code != 1:
        raise command_failed(host.name, unchanged, env=GIT_ENV, action=action)
    # --only commits this path's content and nothing else the user may have staged.
    run_git_checked(
        host,
        repo_dir,
        [*_identity_options(host, repo_dir), "commit", "--quiet", "--only", "-m", message,
         "--", path],
        action=action,
    )
    return run_git_checked(host, repo_dir, ["rev-parse", "HEAD"]).stdout.strip()


def push(
    host: Host, repo_dir: str, remote: str, branch: str, *, timeout: float = PUSH_TIMEOUT
) -> None:
    """``git push --set-upstream remote branch``; PushFailed (naming repo and remote) on failure."""
    remotes = run_git_checked(host, repo_dir, ["remote"]).stdout.split()
    if remote not in remotes:
        known = ", ".join(remotes) if remotes else "none"
        raise RepoError(
            f"{repo_dir} has no git remote named {remote!r} (its remotes: {known}). "
            f"Add it with `git remote add {remote} <url>` or fix the remote in the inventory."
        )
    url = run_git(host, repo_dir, ["remote", "get-url", "--push", remote]).stdout.strip()
    result = host.run(
        ["git", "push", "--set-upstream", remote, f"refs/heads/{branch}:refs/heads/{branch}"],
        cwd=repo_dir,
        timeout=timeout,
        env=GIT_ENV,
    )
    if not result.ok:
        where = f"{remote!r} ({redact(url)})" if url else repr(remote)
        raise command_failed(
            host.name,
            result,
            env=GIT_ENV,
            action=f"Could not push branch {branch!r} of {repo_dir} to remote {where}",
            kind=PushFailed,
        )


def committed(host: Host, repo_dir: str) -> bool:
    """True when the repository has a commit (``HEAD`` resolves)."""
    return run_git(host, repo_dir, ["rev-parse", "--verify", "--quiet", "HEAD"]).ok


def tracked_changes(host: Host, repo_dir: str) -> bool:
    """True when tracked files differ from ``HEAD``, staged or not (``git diff --quiet
    HEAD``, the astro CLI's own dirty check: untracked files do not count)."""
    return not run_git(host, repo_dir, ["diff", "--quiet", "HEAD"]).ok


def remote_url(host: Host, repo_dir: str, remote: str = "origin") -> str | None:
    """The URL of ``remote`` (``git remote get-url``, rewrites applied); None without one."""
    result = run_git(host, repo_dir, ["remote", "get-url", remote])
    return result.stdout.strip() or None if result.ok else None


def parse_porcelain(output: str) -> tuple[FileChange, ...]:
    """Parse ``git status --porcelain=v1 -z`` output."""
    entries = output.split("\0")
    changes: list[FileChange] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue  # the empty tail after the last NUL
        code, path = entry[:2], entry[3:]
        orig = None
        if "R" in code or "C" in code:
            # Renames and copies are followed by their source path as a separate field.
            orig = entries[index]
            index += 1
        changes.append(FileChange(code, path, orig))
    return tuple(changes)


def _in_progress(host: Host, state: Mapping[str, str]) -> tuple[Operation, ...]:
    found: list[Operation] = []
    for name, operation in _STATE_FILES:
        if operation in found or not host.exists(state[name]):
            continue
        # `git am` keeps its state in rebase-apply too, marked by an "applying" file.
        if name == "rebase-apply" and host.exists(state["rebase-apply/applying"]):
            operation = "am"
        found.append(operation)
    if not {"cherry-pick", "revert"} & set(found) and host.exists(state["sequencer/todo"]):
        # A multi-commit cherry-pick or revert stopped between commits.
        todo = host.read_text(state["sequencer/todo"]).split()
        found.append("revert" if todo[:1] == ["revert"] else "cherry-pick")
    return tuple(found)


def _in_progress_message(repo_dir: str, operations: Sequence[Operation]) -> str:
    names = " and ".join(f"a {op}" for op in operations)
    how = "; ".join(_HOW_TO_FINISH[op] for op in operations)
    return f"{repo_dir} is in the middle of {names}. To finish: {how}. Then run again."


def _identity_options(host: Host, repo_dir: str) -> list[str]:
    """``-c user.name=... -c user.email=...`` for whatever identity git cannot find itself."""
    # useConfigOnly stops git guessing root@hostname; env vars and config still count.
    complete = all(
        run_git(host, repo_dir, ["-c", "user.useConfigOnly=true", "var", ident]).ok
        for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    )
    if complete:
        return []
    options: list[str] = []
    for key, fallback in (("user.name", FALLBACK_NAME), ("user.email", FALLBACK_EMAIL)):
        configured = run_git(host, repo_dir, ["config", "--get", key])
        if not (configured.ok and configured.stdout.strip()):
            options += ["-c", f"{key}={fallback}"]
    return options


def run_git(
    host: Host, repo_dir: str, args: Sequence[str], *, timeout: float = GIT_TIMEOUT
) -> CommandResult:
    """``git args`` in ``repo_dir`` through ``host``, with the time-out and environment above."""
    return host.run(["git", *args], cwd=repo_dir, timeout=timeout, env=GIT_ENV)


def run_git_checked(
    host: Host,
    repo_dir: str,
    args: Sequence[str],
    *,
    timeout: float = GIT_TIMEOUT,
    action: str | None = None,
) -> CommandResult:
    """Like :func:`run_git`; a failure raises CommandFailed saying ``action``."""
    return run_checked(
        host, ["git", *args], cwd=repo_dir, timeout=timeout, env=GIT_ENV,
        action=action or f"git {args[0]} failed in {repo_dir}",
    )


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line.removeprefix("fatal: ")


# ---------------------------------------------------------------- the remote's default branch

PushOutcome = Literal["pushed", "behind", "declined"]

# What a remote says when another push updated the branch between its ref advertisement
# and its ref update (git's "cannot lock ref 'refs/heads/main': is at X but expected Y",
# reported as "[remote rejected] (failed to update ref)"; "incorrect old value provided"
# from other servers): a race with a concurrent push, not a refusal.
_RACE = ("failed to update ref", "cannot lock ref", "incorrect old value", "but expected",
         "stale info")


@dataclass(frozen=True)
class Pushed:
    """What a push did: ``pushed``; ``behind`` (the remote moved, before our push or
    during it, under a concurrent one: fetch, rebase, retry); ``declined`` (a server-side
    hook or branch protection refused it), with git's words."""

    outcome: PushOutcome
    said: str = ""


def fetch(host: Host, repo_dir: str, remote: str, *refs: str,
          timeout: float = PUSH_TIMEOUT) -> None:
    """``git fetch --quiet remote refs...`` into the remote-tracking refs; a failure is
    CommandFailed naming the repo and the remote (credentials redacted)."""
    url = remote_url(host, repo_dir, remote)
    if url is None:
        raise RepoError(f"{repo_dir} has no git remote named {remote!r}. Add it with `git remote "
                        f"add {remote} <url>`, or set git.remote in the inventory.")
    specs = [f"+refs/heads/{ref}:refs/remotes/{remote}/{ref}" for ref in refs]
    run_git_checked(host, repo_dir, ["fetch", "--quiet", "--no-tags", remote, *specs],
                 timeout=timeout,
                 action=f"Could not fetch from remote {remote!r} ({redact(url)}) of {repo_dir}")


def remote_head(host: Host, repo_dir: str, remote: str, *, timeout: float = PUSH_TIMEOUT) -> str:
    """The branch the remote's HEAD names (its default branch), asked of the remote itself."""
    result = run_git_checked(host, repo_dir, ["ls-remote", "--symref", remote, "HEAD"],
                          timeout=timeout,
                          action=f"Could not ask remote {remote!r} of {repo_dir} for its "
                                 "default branch")
    for line in result.stdout.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/"):-len("\tHEAD")]
    raise RepoError(f"remote {remote!r} of {repo_dir} names no default branch (an empty "
                    "repository?). Set git.default_branch in the inventory.")


def remote_branch(host: Host, repo_dir: str, remote: str, branch: str, *,
                  timeout: float = PUSH_TIMEOUT) -> str | None:
    """The commit ``branch`` points at on the remote now, or None when it has no such branch."""
    result = run_git_checked(host, repo_dir,
                             ["ls-remote", "--heads", remote, f"refs/heads/{branch}"],
                             timeout=timeout,
                             action=f"Could not read branch {branch!r} of remote {remote!r}")
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def switch(host: Host, repo_dir: str, branch: str, start: str | None = None) -> None:
    """Switch to ``branch``; with ``start``, (re)create it there (``switch -C``)."""
    args = ["switch", "--quiet", "--no-guess", branch] if start is None else [
        "switch", "--quiet", "--no-track", "-C", branch, start]
    run_git_checked(host, repo_dir, args, action=f"Could not switch {repo_dir} to {branch!r}")


def fast_forward(host: Host, repo_dir: str, to: str) -> None:
    """Move the current branch forward to ``to`` (refuses anything but a fast-forward)."""
    run_git_checked(host, repo_dir, ["merge", "--quiet", "--ff-only", to],
                 action=f"Could not fast-forward {repo_dir} to {to}")


def rebase(host: Host, repo_dir: str, onto: str) -> bool:
    """Rebase the current branch onto ``onto``; False (and aborted) on a conflict."""
    identity = _identity_options(host, repo_dir)
    result = run_git(host, repo_dir, [*identity, "rebase", "--quiet", onto])
    if result.ok:
        return True
    run_git(host, repo_dir, ["rebase", "--abort"])
    return False


def reset_to(host: Host, repo_dir: str, commit: str) -> None:
    """``git reset --hard commit``: only ever on a tree ``ensure_clean`` accepted."""
    run_git_checked(host, repo_dir, ["reset", "--quiet", "--hard", commit],
                 action=f"Could not reset {repo_dir} to {commit}")


def push_branch(host: Host, repo_dir: str, remote: str, local: str, branch: str, *,
                timeout: float = PUSH_TIMEOUT) -> Pushed:
    """Push commit/ref ``local`` to ``branch`` on ``remote`` (never forced).

    A push the remote rejects is an answer (``behind`` or ``declined``), not an error; one
    that cannot reach the remote raises PushFailed.
    """
    url = remote_url(host, repo_dir, remote)
    if url is None:
        raise RepoError(f"{repo_dir} has no git remote named {remote!r}. Add it with `git remote "
                        f"add {remote} <url>`, or set git.remote in the inventory.")
    result = host.run(
        ["git", "push", "--porcelain", remote, f"{local}:refs/heads/{branch}"],
        cwd=repo_dir, timeout=timeout, env=GIT_ENV,
    )
    if result.ok:
        return Pushed("pushed")
    status_lines = [line for line in result.stdout.splitlines() if line.startswith("!")]
    said = redact("\n".join(
        line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines()
        if line.strip() and not line.startswith("To ") and line.strip() != "Done"))
    rejected = [line for line in status_lines if "[remote rejected]" in line]
    if rejected:
        # Its reason, in the status line, tells a race from a hook or a protection.
        raced = all(any(words in line for words in _RACE) for line in rejected)
        return Pushed("behind" if raced else "declined", said)
    if any("[rejected]" in line for line in status_lines):
        return Pushed("behind", said)
    raise command_failed(
        host.name, result, env=GIT_ENV, kind=PushFailed,
        action=f"Could not push {branch!r} of {repo_dir} to remote {remote!r} ({redact(url)})",
    )
