"""Reading a repo's history through a Host: what a ref names, a file's text at a commit,
how commits relate. Read-only; every call is ``git`` as :mod:`upgrade.hosts.git` runs it."""

from __future__ import annotations

from upgrade.hosts.git import GIT_ENV, run_git, run_git_checked
from upgrade.hosts.host import Host, command_failed


def rev(host: Host, repo_dir: str, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    result = run_git(host, repo_dir, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    return result.stdout.strip() or None if result.ok else None


def symbolic_ref(host: Host, repo_dir: str, ref: str) -> str | None:
    """The ref a symbolic ref (``refs/remotes/origin/HEAD``) points at, or None."""
    result = run_git(host, repo_dir, ["symbolic-ref", "--quiet", ref])
    return result.stdout.strip() or None if result.ok else None


def text_at(host: Host, repo_dir: str, ref: str, relpath: str) -> str | None:
    """``relpath``'s text (relative to ``repo_dir``) in commit ``ref``; None without it."""
    result = run_git(host, repo_dir, ["show", f"{ref}:./{relpath}"])
    return result.stdout if result.ok else None


def is_ancestor(host: Host, repo_dir: str, commit: str, of: str) -> bool:
    """True when ``commit`` is ``of`` or one of its ancestors (it is "on" that branch)."""
    result = run_git(host, repo_dir, ["merge-base", "--is-ancestor", commit, of])
    if result.exit_code in (0, 1) and not result.timed_out:
        return result.exit_code == 0
    raise command_failed(host.name, result, env=GIT_ENV,
                         action=f"Could not compare commits in {repo_dir}")


def commits_between(host: Host, repo_dir: str, base: str, tip: str) -> list[str]:
    """The commits on ``tip`` that ``base`` lacks, newest first."""
    out = run_git_checked(host, repo_dir, ["rev-list", f"{base}..{tip}"]).stdout
    return out.split()


def merge_base(host: Host, repo_dir: str, one: str, other: str) -> str | None:
    """The best common ancestor of two commits, or None when they share no history."""
    result = run_git(host, repo_dir, ["merge-base", one, other])
    return result.stdout.strip() or None if result.ok else None


def last_change(host: Host, repo_dir: str, ref: str, relpath: str) -> str | None:
    """The newest commit on ``ref`` that changed ``relpath`` (relative to ``repo_dir``)."""
    result = run_git(host, repo_dir, ["log", "-1", "--format=%H", ref, "--", f"./{relpath}"])
    return result.stdout.strip() or None if result.ok else None


def changed_files(host: Host, repo_dir: str, base: str, tip: str) -> list[str]:
    """Paths (from the top level) that differ between two commits."""
    out = run_git_checked(host, repo_dir, ["diff", "--name-only", "-z", base, tip]).stdout
    return [p for p in out.split("\0") if p]
